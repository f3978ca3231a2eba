-- 0010: hourly roll-ups beside the 15-minute ones (0007 visit_rollup, 0009 count_rollup), the same
-- columns with `bucket_us` the start of a UTC hour: a store page of a quarter or a year in a zone whose
-- offset is whole hours (most) reads a quarter of the rows (a year is 8,760 an hour table, 35,040 the
-- 15-minute one); a zone off the hour (India, Nepal, parts of Australia) reads the 15-minute tables.
-- Kept by triggers as events are stored or deleted, like the 15-minute ones.
CREATE TABLE count_rollup_hour (
    store              TEXT NOT NULL,
    sensor             TEXT NOT NULL,
    bucket_us          INTEGER NOT NULL,
    intervals          INTEGER NOT NULL,
    present_sum        REAL NOT NULL,
    peak               REAL NOT NULL,
    peak_us            INTEGER NOT NULL,
    low_n              INTEGER NOT NULL,
    low_sum            REAL NOT NULL,
    high_n             INTEGER NOT NULL,
    high_sum           REAL NOT NULL,
    visitors_est_n     INTEGER NOT NULL,
    visitors_est_sum   REAL NOT NULL,
    passersby_est_n    INTEGER NOT NULL,
    passersby_est_sum  REAL NOT NULL,
    PRIMARY KEY (store, bucket_us, sensor)
);
-- An hour from the counts themselves, as count_rollup_of gives a quarter: the backfill, the delete
-- trigger and the tests use it.
CREATE VIEW count_rollup_hour_of AS
    SELECT r.store, r.sensor, r.bucket_us, r.intervals, r.present_sum, r.peak,
           (SELECT MIN(c.start_us) FROM counts c WHERE c.store = r.store AND c.sensor = r.sensor
            AND c.start_us >= r.bucket_us AND c.start_us < r.bucket_us + 3600000000 AND c.present = r.peak),
           r.low_n, r.low_sum, r.high_n, r.high_sum, r.visitors_est_n, r.visitors_est_sum,
           r.passersby_est_n, r.passersby_est_sum
    FROM (SELECT store, sensor, start_us - start_us % 3600000000 AS bucket_us, COUNT(*) AS intervals,
                 SUM(present) AS present_sum, MAX(present) AS peak,
                 COUNT(present_low) AS low_n, COALESCE(SUM(present_low), 0) AS low_sum,
                 COUNT(present_high) AS high_n, COALESCE(SUM(present_high), 0) AS high_sum,
                 COUNT(visitors_est) AS visitors_est_n, COALESCE(SUM(visitors_est), 0) AS visitors_est_sum,
                 COUNT(passersby_est) AS passersby_est_n,
                 COALESCE(SUM(passersby_est), 0) AS passersby_est_sum
          FROM counts GROUP BY 1, 2, 3) AS r;
-- From the quarters (a quarter of the work of reading every count), each hour's peak the earliest of
-- its quarters' highest.
INSERT INTO count_rollup_hour
    SELECT store, sensor, hour_us, SUM(intervals), SUM(present_sum), MAX(peak),
           MIN(CASE WHEN peak = hour_peak THEN peak_us END), SUM(low_n), SUM(low_sum), SUM(high_n),
           SUM(high_sum), SUM(visitors_est_n), SUM(visitors_est_sum), SUM(passersby_est_n),
           SUM(passersby_est_sum)
    FROM (SELECT *, bucket_us - bucket_us % 3600000000 AS hour_us,
                 MAX(peak) OVER (PARTITION BY store, sensor, bucket_us - bucket_us % 3600000000) AS hour_peak
          FROM count_rollup) AS q
    GROUP BY store, sensor, hour_us;
CREATE TRIGGER count_rollup_hour_add AFTER INSERT ON counts BEGIN
    INSERT INTO count_rollup_hour VALUES (NEW.store, NEW.sensor, NEW.start_us - NEW.start_us % 3600000000, 1,
        NEW.present, NEW.present, NEW.start_us, NEW.present_low IS NOT NULL, COALESCE(NEW.present_low, 0),
        NEW.present_high IS NOT NULL, COALESCE(NEW.present_high, 0), NEW.visitors_est IS NOT NULL,
        COALESCE(NEW.visitors_est, 0), NEW.passersby_est IS NOT NULL, COALESCE(NEW.passersby_est, 0))
    ON CONFLICT (store, bucket_us, sensor) DO UPDATE SET
        intervals = intervals + 1, present_sum = present_sum + excluded.present_sum,
        peak = MAX(peak, excluded.peak),
        peak_us = CASE WHEN excluded.peak > peak OR (excluded.peak = peak AND excluded.peak_us < peak_us)
                       THEN excluded.peak_us ELSE peak_us END,
        low_n = low_n + excluded.low_n, low_sum = low_sum + excluded.low_sum,
        high_n = high_n + excluded.high_n, high_sum = high_sum + excluded.high_sum,
        visitors_est_n = visitors_est_n + excluded.visitors_est_n,
        visitors_est_sum = visitors_est_sum + excluded.visitors_est_sum,
        passersby_est_n = passersby_est_n + excluded.passersby_est_n,
        passersby_est_sum = passersby_est_sum + excluded.passersby_est_sum;
END;
CREATE TRIGGER count_rollup_hour_remove AFTER DELETE ON counts BEGIN
    DELETE FROM count_rollup_hour WHERE store = OLD.store AND sensor = OLD.sensor
        AND bucket_us = OLD.start_us - OLD.start_us % 3600000000;
    INSERT INTO count_rollup_hour SELECT * FROM count_rollup_hour_of WHERE store = OLD.store
        AND sensor = OLD.sensor AND bucket_us = OLD.start_us - OLD.start_us % 3600000000;
END;

CREATE TABLE visit_rollup_hour (
    store      TEXT NOT NULL,
    sensor     TEXT NOT NULL,
    bucket_us  INTEGER NOT NULL,
    visitors   INTEGER NOT NULL,
    passersby  INTEGER NOT NULL,
    fixed      INTEGER NOT NULL,
    PRIMARY KEY (store, bucket_us, sensor)
);
INSERT INTO visit_rollup_hour
    SELECT store, sensor, bucket_us - bucket_us % 3600000000, SUM(visitors), SUM(passersby), SUM(fixed)
    FROM visit_rollup GROUP BY 1, 2, 3;
CREATE TRIGGER visit_rollup_hour_add AFTER INSERT ON visits BEGIN
    INSERT INTO visit_rollup_hour VALUES (NEW.store, NEW.sensor, NEW.start_us - NEW.start_us % 3600000000,
                                          NEW.kind = 'visitor', NEW.kind = 'passerby', NEW.kind = 'fixed')
    ON CONFLICT (store, bucket_us, sensor) DO UPDATE SET visitors = visitors + excluded.visitors,
        passersby = passersby + excluded.passersby, fixed = fixed + excluded.fixed;
END;
CREATE TRIGGER visit_rollup_hour_remove AFTER DELETE ON visits BEGIN
    UPDATE visit_rollup_hour SET visitors = visitors - (OLD.kind = 'visitor'),
        passersby = passersby - (OLD.kind = 'passerby'), fixed = fixed - (OLD.kind = 'fixed')
    WHERE store = OLD.store AND sensor = OLD.sensor AND bucket_us = OLD.start_us - OLD.start_us % 3600000000;
END;
