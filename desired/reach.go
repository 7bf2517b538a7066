package desired

import (
	v1 "reconciler.dev/reconciler/api/v1"
)

// Confine refuses the snapshot when the host's state needs something the
// agent's limits do not allow (an exec probe, a service dir, socket or
// secret file outside the allowed folders). The refusal is an
// InvalidError: the revision is refused whole and the last good one stays
// in force, as for any invalid revision.
func (s *Snapshot) Confine(lim v1.Reach) error {
	if s == nil || s.Effective == nil {
		return nil
	}
	if errs := v1.CheckReach(&s.Effective.Spec, s.Effective.Origins.Locate, lim); len(errs) > 0 {
		return &InvalidError{Revision: s.Revision, Errors: errs.Sorted()}
	}
	return nil
}
