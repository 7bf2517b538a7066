package fleet

import (
	"embed"
	"html/template"
	"io"
	"time"
)

//go:embed templates/fleet.html
var templates embed.FS

var pageTmpl = template.Must(template.New("fleet.html").Funcs(template.FuncMap{
	"short": Short,
	"ago":   Ago,
}).ParseFS(templates, "templates/fleet.html"))

// WritePage renders the report as a page for people. Everything that comes
// from agents (host names, messages, errors) is escaped by html/template.
func WritePage(w io.Writer, rep Report) error { return pageTmpl.Execute(w, rep) }

// Short is a commit id cut to 12 characters.
func Short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	if id == "" {
		return "none"
	}
	return id
}

// Ago says how long before now t was, rounded for people.
func Ago(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String() + " ago"
	case d < time.Hour:
		return d.Round(time.Minute).String() + " ago"
	}
	return d.Round(time.Hour).String() + " ago"
}
