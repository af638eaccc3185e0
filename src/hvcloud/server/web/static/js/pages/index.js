// Every page module registers its routes when imported; one line per module.
import "./dashboard.js";
import "./instances.js";
import "./deploy.js";
