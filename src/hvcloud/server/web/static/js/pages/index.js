// Every page module registers its routes when imported; one line per module.
import "./dashboard.js";
import "./networks.js";
import "./publicips.js";
import "./securitygroups.js";
