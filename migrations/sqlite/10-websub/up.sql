-- WebSub: one subscription per feed whose document or headers advertise a hub.
-- `token` names the callback (/websub/{token}); `secret` is our hub.secret.
-- `state`: 'new' (hub discovered, not asked yet), 'active' (verified, lease
-- running), 'failed' (the hub refused or never verified; retried later),
-- 'stale' (a safety-net poll found entries the hub never pushed),
-- 'unsubscribed' (the feed left the configuration and the hub confirmed).
-- `pending_mode`/`pending_topic`: the request sent and not yet verified.
CREATE TABLE websub_subscriptions (
    feed_id INTEGER PRIMARY KEY REFERENCES feeds (id) ON DELETE CASCADE,
    hub TEXT NOT NULL,
    topic TEXT NOT NULL,
    discovered_at INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'new',
    token TEXT UNIQUE,
    secret TEXT,
    pending_mode TEXT,
    pending_topic TEXT,
    requested_at INTEGER,
    verified_at INTEGER,
    lease_seconds INTEGER,
    lease_end INTEGER,
    last_push_at INTEGER,
    pushes INTEGER NOT NULL DEFAULT 0,
    safety_polls INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at INTEGER NOT NULL DEFAULT 0
);

-- The built-in hub (`[websub] serve_hub`): readers subscribed to the
-- river's own feeds. A row exists only once its callback answered the
-- verification of intent; it ends with its lease or an unsubscription.
CREATE TABLE websub_hub_subscribers (
    id INTEGER PRIMARY KEY,
    topic TEXT NOT NULL,
    callback TEXT NOT NULL,
    secret TEXT,
    lease_end INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 0,
    failures INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (topic, callback)
);
CREATE INDEX websub_hub_subscribers_topic ON websub_hub_subscribers (topic, lease_end);
