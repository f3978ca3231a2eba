-- Count events may carry people estimates (site-calibrated factors applied to the visit counts).
ALTER TABLE counts ADD COLUMN visitors_est REAL;
ALTER TABLE counts ADD COLUMN passersby_est REAL;
