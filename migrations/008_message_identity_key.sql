-- processed_messages' primary key becomes the message's identity (SPEC D11): the index built in
-- migration 007 takes the key's place, so this only locks the table for a moment.

ALTER TABLE processed_messages
  DROP CONSTRAINT processed_messages_pkey,
  ADD CONSTRAINT processed_messages_pkey PRIMARY KEY USING INDEX processed_messages_identity_key;
