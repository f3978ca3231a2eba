-- 0009 (PostgreSQL): count roll-ups for the report at chain scale, the trigger log, the signal fields of
-- status events and each sensor's latest status. Numbered 0009 as the lead asked (0008 is another branch's; gaps are allowed).

-- Count intervals per store, sensor and 15-minute bucket of their start, kept by a trigger as counts are
-- stored (or deleted), beside visit_rollup (0007): what the report needs of the counts of a one-sensor
-- store (collector/reports/rollup.py) without reading them. 15 minutes for the reason visit_rollup gives:
-- every time zone's local hours and days are whole sums of buckets; the reads add them up by local hour.
-- The peak keeps its earliest start on a tie, the report's rule. *_n count the intervals that carried
-- the optional field, so a mean is defined only when all did, as the report says.
CREATE TABLE count_rollup (
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
-- What one bucket holds, from the counts themselves: the backfill and the delete trigger use it.
CREATE VIEW count_rollup_of AS
    SELECT store, sensor, start_us - start_us % 900000000 AS bucket_us, COUNT(*)::int AS intervals,
           SUM(present) AS present_sum, MAX(present) AS peak,
           (ARRAY_AGG(start_us ORDER BY present DESC, start_us))[1] AS peak_us,
           COUNT(present_low)::int AS low_n, COALESCE(SUM(present_low), 0) AS low_sum,
           COUNT(present_high)::int AS high_n, COALESCE(SUM(present_high), 0) AS high_sum,
           COUNT(visitors_est)::int AS visitors_est_n, COALESCE(SUM(visitors_est), 0) AS visitors_est_sum,
           COUNT(passersby_est)::int AS passersby_est_n, COALESCE(SUM(passersby_est), 0) AS passersby_est_sum
    FROM counts GROUP BY 1, 2, 3;
INSERT INTO count_rollup SELECT * FROM count_rollup_of;
CREATE FUNCTION count_rollup_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO count_rollup VALUES (NEW.store, NEW.sensor, NEW.start_us - NEW.start_us % 900000000, 1,
            NEW.present, NEW.present, NEW.start_us, (NEW.present_low IS NOT NULL)::int,
            COALESCE(NEW.present_low, 0), (NEW.present_high IS NOT NULL)::int, COALESCE(NEW.present_high, 0),
            (NEW.visitors_est IS NOT NULL)::int, COALESCE(NEW.visitors_est, 0),
            (NEW.passersby_est IS NOT NULL)::int, COALESCE(NEW.passersby_est, 0))
        ON CONFLICT (store, bucket_us, sensor) DO UPDATE SET
            intervals = count_rollup.intervals + 1,
            present_sum = count_rollup.present_sum + excluded.present_sum,
            peak = GREATEST(count_rollup.peak, excluded.peak),
            peak_us = CASE WHEN excluded.peak > count_rollup.peak
                            OR (excluded.peak = count_rollup.peak AND excluded.peak_us < count_rollup.peak_us)
                           THEN excluded.peak_us ELSE count_rollup.peak_us END,
            low_n = count_rollup.low_n + excluded.low_n, low_sum = count_rollup.low_sum + excluded.low_sum,
            high_n = count_rollup.high_n + excluded.high_n, high_sum = count_rollup.high_sum + excluded.high_sum,
            visitors_est_n = count_rollup.visitors_est_n + excluded.visitors_est_n,
            visitors_est_sum = count_rollup.visitors_est_sum + excluded.visitors_est_sum,
            passersby_est_n = count_rollup.passersby_est_n + excluded.passersby_est_n,
            passersby_est_sum = count_rollup.passersby_est_sum + excluded.passersby_est_sum;
        RETURN NEW;
    END IF;
    -- Nothing deletes counts today; should anything, its bucket is recomputed (a peak cannot be subtracted).
    DELETE FROM count_rollup WHERE store = OLD.store AND sensor = OLD.sensor
        AND bucket_us = OLD.start_us - OLD.start_us % 900000000;
    INSERT INTO count_rollup SELECT * FROM count_rollup_of
        WHERE store = OLD.store AND sensor = OLD.sensor AND bucket_us = OLD.start_us - OLD.start_us % 900000000;
    RETURN OLD;
END
$$;
CREATE TRIGGER count_rollup_change AFTER INSERT OR DELETE ON counts
    FOR EACH ROW EXECUTE FUNCTION count_rollup_change();

-- Every trigger the collector sent (collector/online/triggers.py), for the omnichannel page's log: the
-- profile id and the visit's event id only, as the trigger itself; erased with the profile, and deleted
-- with the visits by retention.
CREATE TABLE trigger_log (
    visit       TEXT PRIMARY KEY,
    store       TEXT NOT NULL,
    sensor      TEXT NOT NULL,
    profile_id  TEXT NOT NULL,
    at_us       BIGINT NOT NULL,
    sent_us     BIGINT NOT NULL
);
CREATE INDEX trigger_log_store_at ON trigger_log (store, at_us);
CREATE INDEX trigger_log_profile ON trigger_log (profile_id);

-- The latest status of each sensor (the greatest time, then event id: the sensor table's rule), kept by
-- triggers, so the sensor table reads one row a sensor rather than a status a minute for a year.
CREATE TABLE sensor_latest (
    store     TEXT NOT NULL,
    sensor    TEXT NOT NULL,
    event_id  TEXT NOT NULL,
    at_us     BIGINT NOT NULL,
    PRIMARY KEY (store, sensor)
);
INSERT INTO sensor_latest
    SELECT store, sensor, event_id, at_us FROM statuses t WHERE event_id = (
        SELECT event_id FROM statuses u WHERE u.store = t.store AND u.sensor = t.sensor
        ORDER BY at_us DESC, event_id DESC LIMIT 1);
CREATE FUNCTION sensor_latest_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO sensor_latest VALUES (NEW.store, NEW.sensor, NEW.event_id, NEW.at_us)
        ON CONFLICT (store, sensor) DO UPDATE SET event_id = excluded.event_id, at_us = excluded.at_us
        WHERE excluded.at_us > sensor_latest.at_us
           OR (excluded.at_us = sensor_latest.at_us AND excluded.event_id > sensor_latest.event_id);
        RETURN NEW;
    END IF;
    -- Nothing deletes statuses today; should anything, the sensor's latest is found again.
    DELETE FROM sensor_latest WHERE store = OLD.store AND sensor = OLD.sensor AND event_id = OLD.event_id;
    INSERT INTO sensor_latest
        SELECT store, sensor, event_id, at_us FROM statuses WHERE store = OLD.store AND sensor = OLD.sensor
        AND NOT EXISTS (SELECT 1 FROM sensor_latest l WHERE l.store = OLD.store AND l.sensor = OLD.sensor)
        ORDER BY at_us DESC, event_id DESC LIMIT 1;
    RETURN OLD;
END
$$;
CREATE TRIGGER sensor_latest_change AFTER INSERT OR DELETE ON statuses
    FOR EACH ROW EXECUTE FUNCTION sensor_latest_change();

-- The sensor table shows them (footfall/events.py StatusEvent); older status events had none.
ALTER TABLE statuses ADD COLUMN signal_ref_dbm DOUBLE PRECISION;
ALTER TABLE statuses ADD COLUMN signal_offset_db DOUBLE PRECISION;
ALTER TABLE statuses ADD COLUMN signal_drift BOOLEAN;
