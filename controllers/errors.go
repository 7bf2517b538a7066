package controllers

import "errors"

// ErrTerminal is matched (errors.Is) by every error marked with Terminal:
// the input is wrong, and retrying the same thing will not help until
// someone changes it (a target whose driver is not wired in, a declared
// object a driver cannot manage). Callers back off to their normal pace
// instead of retrying at once, as controller-runtime's TerminalError does.
var ErrTerminal = errors.New("terminal: retrying will not help")

// ErrCannotRun is what Run returns from a driver wrapper whose driver does
// not run services once (it is not a Runner): the caller falls back to
// Apply, or reports that a trigger cannot run the service.
var ErrCannotRun = errors.New("the driver cannot run a service once")

// Terminal marks err as terminal; nil stays nil.
func Terminal(err error) error {
	if err == nil {
		return nil
	}
	return &terminalError{err}
}

type terminalError struct{ err error }

func (e *terminalError) Error() string        { return e.err.Error() }
func (e *terminalError) Unwrap() error        { return e.err }
func (e *terminalError) Is(target error) bool { return target == ErrTerminal }
