-- Count events may carry an 80 % interval around `present` (the estimator's error bars).
ALTER TABLE counts ADD COLUMN present_low REAL;
ALTER TABLE counts ADD COLUMN present_high REAL;
