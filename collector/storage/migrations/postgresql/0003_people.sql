-- 0003 (PostgreSQL): count events may carry people estimates (site-calibrated factors).
ALTER TABLE counts ADD COLUMN visitors_est DOUBLE PRECISION;
ALTER TABLE counts ADD COLUMN passersby_est DOUBLE PRECISION;
