-- Replies: a message may quote an earlier message of the same room.
ALTER TABLE messages ADD COLUMN reply_to INTEGER REFERENCES messages (id);
