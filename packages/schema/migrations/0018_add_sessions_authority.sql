-- The grant whose authority a session was issued under, when that is not the issuing session
-- itself (a login acting through a grant its principal holds). With issued_by, the two links
-- up a session's chain of authority: a session is valid only while every link is.
ALTER TABLE sessions ADD COLUMN authority_id UUID;
