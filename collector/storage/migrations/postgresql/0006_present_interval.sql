-- 0006 (PostgreSQL): count events may carry an 80 % interval around `present`.
ALTER TABLE counts ADD COLUMN present_low DOUBLE PRECISION;
ALTER TABLE counts ADD COLUMN present_high DOUBLE PRECISION;
