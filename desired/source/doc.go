// Package source is the only way the rest of the program gets desired-state
// files: it turns a git URL (https, http, ssh, scp-like, file://) or a plain
// local folder into an Artifact, an immutable fs.FS of one revision narrowed
// to a folder, named by its commit.
//
// Polling must be cheap, because an agent polls all day and nearly every
// poll finds nothing new. So a Fetch asks the server for its refs once and
// stops there when the ref still points at the commit fetched last. Only
// when the ref moved does it download, and then shallow: depth 1, only that
// one ref, telling the server which commit it already has so unchanged
// files are not sent again. Over http the lookup is git protocol v2's
// ls-refs, asking only for the names the ref can mean (protov2.go): one
// POST whose answer is a line or two however many branches and tags the
// repository has, and a changed poll is that POST plus a v2 fetch. A server
// that does not speak v2 gets the v0/v1 way (go-git: one GET info/refs, the
// whole advertisement, then a POST sharing it), as does ssh. Anything else
// (a full clone every poll, fetching all branches) costs the git server and
// the network for nothing.
//
// Fetched commits live in a cache (a bare repository plus a small state
// file under Options.CacheDir, one folder per URL and ref) that survives
// restarts: an agent that restarts while the git server is down still has
// the revision it was enforcing, through Last. The cache is never trusted
// blindly: every object of the tree handed out is re-read and checked
// against its hash, and a damaged cache is thrown away and fetched again.
//
// Reading an Artifact never touches the network: file contents are read
// from the cache's object store on demand (and checked against their hash).
//
// Decisions worth knowing:
//   - A Ref that is a full commit hash is pinned: once cached, Fetch asks
//     the server nothing. To fetch it, a branch or tag pointing at it is
//     used when there is one; otherwise over http the commit is asked for by
//     hash (git's http backend serves any reachable commit). When the server
//     refuses that, and always over ssh unless the server advertises
//     allow-reachable-sha1-in-want, every branch and tag is fetched in full
//     (no depth) and the commit looked up there.
//   - A short Ref that names both a branch and a tag is an error, not a
//     guess; "refs/heads/x" or "refs/tags/x" says which.
//   - Tags resolve to the commit they point to (annotated tags are peeled).
//   - A force-pushed branch is simply fetched again: whether a ref may move
//     backwards is policy decided elsewhere (desired/trust). The cache keeps
//     every fetched commit with the standard shallow marks; History
//     (history.go) answers from it how a new commit relates to an older one,
//     deepening the ref's history from the server (depth 2, 4, 8 ...) only
//     when the cache cannot tell.
//   - file:// repositories are read with go-git directly (no git binary),
//     copying one commit and its tree into the cache; go-git's in-process
//     server cannot serve a depth.
//   - ssh needs a key file and a known_hosts file; an unknown or changed host
//     key is an error (ErrHostKey), never trusted on first use.
//   - A plain folder is read into memory at each Fetch; its revision is a
//     hash of the paths and contents ("local:" + 12 hex), and changed means
//     the hash differs from the previous Fetch in this process.
//   - Processes sharing a CacheDir (the agent and an operator's `plan`) take
//     turns: each cache folder is locked (flock) while a Fetch or Last runs.
//   - An Artifact reads from the cache it came from. If a later Fetch finds
//     that cache damaged and rebuilds it, older Artifacts can no longer be
//     read; take what you need from an Artifact when you get it.
package source
