-- 0008 (PostgreSQL): connected phones (#14). A visit says whether its device was connected to a store network
-- (0/1, as `randomized`), a count how many devices were; NULL for sensors that listen to no store network.
ALTER TABLE visits ADD COLUMN connected INTEGER;
ALTER TABLE counts ADD COLUMN connected INTEGER;
