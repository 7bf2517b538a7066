package fleet

import (
	"embed"
	"fmt"
	"html/template"
	"io"

	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/desired/source"
)

//go:embed templates/fleet.html
var templates embed.FS

var pageTmpl = template.Must(template.New("fleet.html").Funcs(template.FuncMap{
	"short": Short,
	"ago":   status.Ago,
}).ParseFS(templates, "templates/fleet.html"))

// page is what the template reads: the report, and the hosts it lists.
type page struct {
	Report
	Summary string
	Listed  []Host
	Left    int // hosts not listed (converged)
}

// WritePage renders the report as a page for people: the summary line, then
// the hosts that are not converged (every host with all), then how many
// were left out. Everything that comes from agents (host names, messages,
// errors) is escaped by html/template.
func WritePage(w io.Writer, rep Report, all bool) error {
	p := page{Report: rep, Summary: SummaryLine(rep), Listed: Exceptions(rep, all || len(rep.Hosts) <= ListEveryUpTo)}
	p.Left = len(rep.Hosts) - len(p.Listed)
	return pageTmpl.Execute(w, p)
}

// ListEveryUpTo is the fleet size up to which the table and the page list
// every agent even without --all: a handful of hosts reads best as the whole
// list ("which hosts run which revision"), while at hundreds only the
// exceptions are worth a line each and the rest are counted.
const ListEveryUpTo = 20

// Exceptions returns the hosts that are not converged or whose rollout
// halted or is unavailable, in the report's order, or every host when all.
func Exceptions(rep Report, all bool) []Host {
	if all {
		return rep.Hosts
	}
	var out []Host
	for _, h := range rep.Hosts {
		if !h.Converged || h.Rollout == HostHalted || h.Rollout == HostUnavailable {
			out = append(out, h)
		}
	}
	return out
}

// SummaryLine is the line a person reads first: how many agents converged
// on which revision, and how many did not, by why.
func SummaryLine(rep Report) string {
	c := rep.Summary
	return fmt.Sprintf("%d of %d agents converged on %s: %d drifted, %d on another revision, %d unreachable",
		c.Converged, c.Agents, Short(rep.Revision), c.Drifted, c.OtherRevision, c.Unreachable)
}

// Short is a revision id as source.Short prints it, "none" when a host
// reports none.
func Short(id string) string {
	if id == "" {
		return "none"
	}
	return source.Short(id)
}
