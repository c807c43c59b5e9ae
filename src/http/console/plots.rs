//! SVG plots for the operations page (drawn on the server).
