-- 0008: connected phones (#14). A visit says whether its device was connected to a store network, a count
-- how many devices were; NULL for events of sensors that listen to no store network (and of older sensors).
ALTER TABLE visits ADD COLUMN connected INTEGER;
ALTER TABLE counts ADD COLUMN connected INTEGER;
