package controllers

import "time"

// Maintenance is the maintenance state a pass worked with (engine.Maintenance
// is this type; /status shows it).
type Maintenance struct {
	Active  bool       `json:"active"`
	Expired bool       `json:"expired,omitempty"` // declared on, but its window ended
	Reason  string     `json:"reason,omitempty"`
	Until   *time.Time `json:"until,omitempty"`
}
