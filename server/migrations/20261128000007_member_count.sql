-- How many members each room has, kept by triggers. Counting them on every socket's `hello`
-- (the user's room list) and on every public-room listing read every membership of the room:
-- ~370 µs per hello in a 5,000-member room, O(members²) when all of them reconnect
-- (docs/perf.md, eleventh round).
ALTER TABLE rooms ADD COLUMN member_count INTEGER NOT NULL DEFAULT 0;

UPDATE rooms SET member_count = (SELECT COUNT(*) FROM members m WHERE m.room_id = rooms.id);

-- Members are only ever added by INSERT (plain or ON CONFLICT DO NOTHING, which fires no
-- trigger when nothing is inserted) and removed by DELETE, including the cascades from a
-- deleted user or room, which fire DELETE triggers too. Never INSERT OR REPLACE into members:
-- its implicit delete fires no trigger.
CREATE TRIGGER members_counted_in AFTER INSERT ON members BEGIN
    UPDATE rooms SET member_count = member_count + 1 WHERE id = NEW.room_id;
END;

CREATE TRIGGER members_counted_out AFTER DELETE ON members BEGIN
    UPDATE rooms SET member_count = member_count - 1 WHERE id = OLD.room_id;
END;
