// Every page module registers its routes when imported; one line per module.
import "./dashboard.js";
