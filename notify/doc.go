// Package notify tells people and alerting systems what an agent's passes
// did: a revision refused, a pass failed, drift left after a pass,
// maintenance entered or left, a failure policy that gave up. Each
// notification is a condition of one host that fires and, when it clears,
// resolves, so Alertmanager can close the alert it opened.
//
// Targets are configured by a file (LoadFile): a generic JSON webhook signed
// with HMAC-SHA256, a Slack-compatible incoming webhook, and Alertmanager's
// API v2. The agent must never wait for a target: Notifier.Notify only
// queues, one goroutine per target sends, a target that is down is retried
// with backoff, and a full queue drops its oldest entry and counts it.
package notify
