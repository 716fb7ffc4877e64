//! SVG charts drawn on the server: a number, a sparkline, a time series, bars and a table.
//! Every label is escaped; sizes come from the viewBox, so a chart fills its widget at any width.
