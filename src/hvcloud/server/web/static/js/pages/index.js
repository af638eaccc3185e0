// Every page module registers its routes when imported; one line per module.
import "./dashboard.js";
import "./networks.js";
import "./publicips.js";
import "./securitygroups.js";
import "./infra.js";
import "./capacity.js";
import "./accounts.js";
import "./offerings.js";
import "./volumes.js";
import "./templates.js";
import "./sshkeys.js";
import "./activity.js";
import "./instances.js";
import "./deploy.js";
