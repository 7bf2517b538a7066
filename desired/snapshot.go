package desired

import (
	"fmt"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/desired/source"
)

// Snapshot is one host's desired state at one revision: immutable, and the
// only thing the rest of the program learns from git.
type Snapshot struct {
	Revision  source.Revision
	Host      string
	Effective *Effective
	// Changed is true when the source moved since its last fetch.
	Changed bool
}

// InvalidError says a revision cannot be applied because what it says is
// wrong. Retrying will not help until someone commits a fix: it is terminal
// for that revision.
type InvalidError struct {
	Revision source.Revision
	Errors   v1.ErrorList
}

func (e *InvalidError) Error() string {
	return fmt.Sprintf("revision %s is invalid (%d error(s)):\n%s", source.Short(e.Revision.ID), e.Errors.Total(), e.Errors.Error())
}

// FromArtifactLimited loads, validates and merges one fetched revision for
// host, within lim: a revision over a bound is an InvalidError whose first
// error names the bound.
func FromArtifactLimited(art source.Artifact, host string, lim v1.Limits) (*Snapshot, error) {
	repo, err := LoadLimited(art.FS, "", lim)
	if err != nil {
		return nil, fmt.Errorf("revision %s: %w", source.Short(art.Revision.ID), err)
	}
	if errs := repo.Validate(); len(errs) > 0 {
		return nil, &InvalidError{Revision: art.Revision, Errors: errs}
	}
	eff, errs := repo.Effective(host)
	if len(errs) > 0 {
		return nil, &InvalidError{Revision: art.Revision, Errors: errs}
	}
	return &Snapshot{Revision: art.Revision, Host: host, Effective: eff}, nil
}
