-- 0010 (PostgreSQL): hourly roll-ups beside the 15-minute ones (0007 visit_rollup, 0009 count_rollup),
-- the same columns with `bucket_us` the start of a UTC hour: a store page of a quarter or a year in a
-- zone whose offset is whole hours (most) reads a quarter of the rows (a year is 8,760 an hour table,
-- 35,040 the 15-minute one); a zone off the hour (India, Nepal, parts of Australia) reads the 15-minute
-- tables. Kept by triggers as events are stored or deleted, like the 15-minute ones.
CREATE TABLE count_rollup_hour (
    store              TEXT NOT NULL,
    sensor             TEXT NOT NULL,
    bucket_us          BIGINT NOT NULL,
    intervals          INTEGER NOT NULL,
    present_sum        DOUBLE PRECISION NOT NULL,
    peak               DOUBLE PRECISION NOT NULL,
    peak_us            BIGINT NOT NULL,
    low_n              INTEGER NOT NULL,
    low_sum            DOUBLE PRECISION NOT NULL,
    high_n             INTEGER NOT NULL,
    high_sum           DOUBLE PRECISION NOT NULL,
    visitors_est_n     INTEGER NOT NULL,
    visitors_est_sum   DOUBLE PRECISION NOT NULL,
    passersby_est_n    INTEGER NOT NULL,
    passersby_est_sum  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (store, bucket_us, sensor)
);
-- An hour from the counts themselves, as count_rollup_of gives a quarter: the delete trigger and the
-- tests use it.
CREATE VIEW count_rollup_hour_of AS
    SELECT store, sensor, start_us - start_us % 3600000000 AS bucket_us, COUNT(*)::int AS intervals,
           SUM(present) AS present_sum, MAX(present) AS peak,
           (ARRAY_AGG(start_us ORDER BY present DESC, start_us))[1] AS peak_us,
           COUNT(present_low)::int AS low_n, COALESCE(SUM(present_low), 0) AS low_sum,
           COUNT(present_high)::int AS high_n, COALESCE(SUM(present_high), 0) AS high_sum,
           COUNT(visitors_est)::int AS visitors_est_n, COALESCE(SUM(visitors_est), 0) AS visitors_est_sum,
           COUNT(passersby_est)::int AS passersby_est_n, COALESCE(SUM(passersby_est), 0) AS passersby_est_sum
    FROM counts GROUP BY 1, 2, 3;
-- From the quarters (a quarter of the work of reading every count), each hour's peak the earliest of
-- its quarters' highest.
INSERT INTO count_rollup_hour
    SELECT store, sensor, bucket_us - bucket_us % 3600000000, SUM(intervals)::int, SUM(present_sum), MAX(peak),
           (ARRAY_AGG(peak_us ORDER BY peak DESC, peak_us))[1], SUM(low_n)::int, SUM(low_sum),
           SUM(high_n)::int, SUM(high_sum), SUM(visitors_est_n)::int, SUM(visitors_est_sum),
           SUM(passersby_est_n)::int, SUM(passersby_est_sum)
    FROM count_rollup GROUP BY 1, 2, 3;
CREATE FUNCTION count_rollup_hour_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO count_rollup_hour VALUES (NEW.store, NEW.sensor, NEW.start_us - NEW.start_us % 3600000000,
            1, NEW.present, NEW.present, NEW.start_us, (NEW.present_low IS NOT NULL)::int,
            COALESCE(NEW.present_low, 0), (NEW.present_high IS NOT NULL)::int, COALESCE(NEW.present_high, 0),
            (NEW.visitors_est IS NOT NULL)::int, COALESCE(NEW.visitors_est, 0),
            (NEW.passersby_est IS NOT NULL)::int, COALESCE(NEW.passersby_est, 0))
        ON CONFLICT (store, bucket_us, sensor) DO UPDATE SET
            intervals = count_rollup_hour.intervals + 1,
            present_sum = count_rollup_hour.present_sum + excluded.present_sum,
            peak = GREATEST(count_rollup_hour.peak, excluded.peak),
            peak_us = CASE WHEN excluded.peak > count_rollup_hour.peak
                            OR (excluded.peak = count_rollup_hour.peak
                                AND excluded.peak_us < count_rollup_hour.peak_us)
                           THEN excluded.peak_us ELSE count_rollup_hour.peak_us END,
            low_n = count_rollup_hour.low_n + excluded.low_n,
            low_sum = count_rollup_hour.low_sum + excluded.low_sum,
            high_n = count_rollup_hour.high_n + excluded.high_n,
            high_sum = count_rollup_hour.high_sum + excluded.high_sum,
            visitors_est_n = count_rollup_hour.visitors_est_n + excluded.visitors_est_n,
            visitors_est_sum = count_rollup_hour.visitors_est_sum + excluded.visitors_est_sum,
            passersby_est_n = count_rollup_hour.passersby_est_n + excluded.passersby_est_n,
            passersby_est_sum = count_rollup_hour.passersby_est_sum + excluded.passersby_est_sum;
        RETURN NEW;
    END IF;
    DELETE FROM count_rollup_hour WHERE store = OLD.store AND sensor = OLD.sensor
        AND bucket_us = OLD.start_us - OLD.start_us % 3600000000;
    INSERT INTO count_rollup_hour SELECT * FROM count_rollup_hour_of WHERE store = OLD.store
        AND sensor = OLD.sensor AND bucket_us = OLD.start_us - OLD.start_us % 3600000000;
    RETURN OLD;
END
$$;
CREATE TRIGGER count_rollup_hour_change AFTER INSERT OR DELETE ON counts
    FOR EACH ROW EXECUTE FUNCTION count_rollup_hour_change();

CREATE TABLE visit_rollup_hour (
    store      TEXT NOT NULL,
    sensor     TEXT NOT NULL,
    bucket_us  BIGINT NOT NULL,
    visitors   INTEGER NOT NULL,
    passersby  INTEGER NOT NULL,
    fixed      INTEGER NOT NULL,
    PRIMARY KEY (store, bucket_us, sensor)
);
INSERT INTO visit_rollup_hour
    SELECT store, sensor, bucket_us - bucket_us % 3600000000, SUM(visitors)::int, SUM(passersby)::int,
           SUM(fixed)::int
    FROM visit_rollup GROUP BY 1, 2, 3;
CREATE FUNCTION visit_rollup_hour_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO visit_rollup_hour VALUES (NEW.store, NEW.sensor, NEW.start_us - NEW.start_us % 3600000000,
            (NEW.kind = 'visitor')::int, (NEW.kind = 'passerby')::int, (NEW.kind = 'fixed')::int)
        ON CONFLICT (store, bucket_us, sensor) DO UPDATE SET
            visitors = visit_rollup_hour.visitors + excluded.visitors,
            passersby = visit_rollup_hour.passersby + excluded.passersby,
            fixed = visit_rollup_hour.fixed + excluded.fixed;
        RETURN NEW;
    END IF;
    UPDATE visit_rollup_hour SET visitors = visitors - (OLD.kind = 'visitor')::int,
        passersby = passersby - (OLD.kind = 'passerby')::int, fixed = fixed - (OLD.kind = 'fixed')::int
    WHERE store = OLD.store AND sensor = OLD.sensor AND bucket_us = OLD.start_us - OLD.start_us % 3600000000;
    RETURN OLD;
END
$$;
CREATE TRIGGER visit_rollup_hour_change AFTER INSERT OR DELETE ON visits
    FOR EACH ROW EXECUTE FUNCTION visit_rollup_hour_change();
