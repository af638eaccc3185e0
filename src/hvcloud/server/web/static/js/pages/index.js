// Every page module registers its routes when imported; one line per module.
import "./dashboard.js";
import "./volumes.js";
import "./templates.js";
import "./sshkeys.js";
import "./activity.js";
