-- Users by email, for the one-email-per-user rule: without it, every user created in a realm
-- of 100,000 users read all of them to check its email.
CREATE INDEX objects_user_email ON objects (realm_id, ((doc::jsonb) ->> 'email'))
    WHERE kind = 'user';
