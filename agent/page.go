package agent

import (
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"sort"
	"time"

	"reconciler.dev/reconciler/api/names"
	"reconciler.dev/reconciler/api/status"
	"reconciler.dev/reconciler/controllers"
	"reconciler.dev/reconciler/desired/source"
)

// The status page is rendered on the server from embedded templates and
// works without JavaScript (refresh to update); a small script follows the
// event stream and re-renders after each pass. html/template escapes
// everything that comes from git or from the host.

//go:embed web/status.html web/status.css web/status.js
var web embed.FS

var statusPage = template.Must(template.New("status.html").Funcs(template.FuncMap{
	"short": source.Short,
	"ago":   status.Ago,
	"bytes": status.Bytes,
	"took": func(start, end time.Time) string {
		if end.IsZero() || start.IsZero() {
			return "running"
		}
		return end.Sub(start).Round(time.Millisecond).String()
	},
	// Maintenance on is worth a look, off is normal; for the other
	// conditions true is good.
	"isMaintenance": func(typ string) bool { return typ == names.ConditionMaintenance },
	"isReportOnly":  func(mode string) bool { return mode == string(controllers.ReportOnly) },
	"conditionClass": func(typ string, on bool) string {
		switch {
		case typ == names.ConditionMaintenance && on:
			return "warn"
		case typ == names.ConditionMaintenance:
			return ""
		case on:
			return "ok"
		}
		return "bad"
	},
	"resultClass": func(r string) string {
		switch r {
		case names.ResultConverged, names.ResultInSync:
			return "ok"
		case names.ResultFailed, names.ResultError:
			return "bad"
		}
		return ""
	},
}).ParseFS(web, "web/status.html"))

// pageObject is an object's row: its status and the drift of its fields.
type pageObject struct {
	status.ObjectStatus
	Drift []status.Drift
}

type pageData struct {
	S            status.Status
	Now          time.Time
	Verdict      string
	VerdictClass string
	Objects      []pageObject
	Events       []status.Event // most recent first
}

func newPageData(st status.Status, now time.Time) pageData {
	d := pageData{S: st, Now: now}
	byObject := map[string][]status.Drift{}
	for _, dr := range st.Drift {
		if dr.Action != names.DriftReverted {
			byObject[dr.Subject] = append(byObject[dr.Subject], dr)
		}
	}
	for _, o := range st.Objects {
		d.Objects = append(d.Objects, pageObject{ObjectStatus: o, Drift: byObject[o.Subject]})
	}
	sort.SliceStable(d.Objects, func(i, j int) bool { return d.Objects[i].InSync == false && d.Objects[j].InSync })
	for i := len(st.Events) - 1; i >= 0 && len(d.Events) < 50; i-- {
		d.Events = append(d.Events, st.Events[i])
	}
	ready, converged := false, false
	for _, c := range st.Conditions {
		switch c.Type {
		case names.ConditionReady:
			ready = c.Status
		case names.ConditionConverged:
			converged = c.Status
		}
	}
	drifting := false
	for _, o := range st.Objects {
		if !o.InSync {
			drifting = true
		}
	}
	switch {
	case st.LastPass == nil:
		d.Verdict, d.VerdictClass = "starting", ""
	case ready && converged && !drifting:
		d.Verdict, d.VerdictClass = "in sync", "ok"
	case drifting:
		d.Verdict, d.VerdictClass = "drift", "warn"
	default:
		d.Verdict, d.VerdictClass = "failing", "bad"
	}
	return d
}

func (a *Agent) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; connect-src 'self'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := statusPage.Execute(w, newPageData(a.Status(), time.Now())); err != nil {
		a.log.Error("rendering the status page", "pass", "-", "revision", a.goodID(), "err", err)
	}
}

// namesScript is /static/names.js: the names the page's script needs (the
// event types it subscribes to, and which of them call for a refresh), made
// from their constants in api/status, so the script keeps no copies.
func namesScript(w http.ResponseWriter, _ *http.Request) {
	b, err := json.Marshal(map[string]any{
		"events":    names.EventTypes,
		"refreshOn": []string{names.EventPassFinished, names.EventRevision, names.EventRevisionRefused},
		"figures":   names.EventResources,
	})
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	fmt.Fprintf(w, "window.reconcilerNames = %s;\n", b)
}

// staticFiles serves the page's stylesheet and script.
func staticFiles() http.Handler {
	sub, _ := fs.Sub(web, "web")
	return http.StripPrefix("/static/", http.FileServer(http.FS(sub)))
}
