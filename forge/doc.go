// Package forge reports back to the git forge: a commit status per host
// (context "reconciler/<host>") for the revision in force, in the API shape
// GitHub and Gitea share (POST /repos/{owner}/{repo}/statuses/{sha}).
//
// The agent must never wait for the forge: Reporter.Set only records the
// wanted status and returns; one goroutine posts it, dropping statuses that
// a newer one for the same commit has replaced, skipping one already posted,
// spacing posts by a minimum interval, and retrying a forge that is down
// with backoff. A failure is logged and counted, never returned to a pass.
package forge
