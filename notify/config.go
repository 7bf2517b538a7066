package notify

import (
	"fmt"
	"net/url"
	"os"

	"sigs.k8s.io/yaml"
)

// Target kinds.
const (
	KindWebhook      = "webhook"
	KindSlack        = "slack"
	KindAlertmanager = "alertmanager"
)

// Config is the file given to --notify-file.
type Config struct {
	Targets []TargetConfig `json:"targets"`
}

// TargetConfig is one place notifications go.
type TargetConfig struct {
	// Name appears in logs; it defaults to the kind.
	Name string `json:"name,omitempty"`
	Kind string `json:"kind"`
	// URL is the webhook's address, or Alertmanager's root
	// (http://HOST:9093; /api/v2/alerts is added).
	URL string `json:"url"`
	// SecretFile holds the HMAC key of a webhook target (required for it).
	SecretFile string `json:"secretFile,omitempty"`
	// Events, when given, limits the target to these event types.
	Events []string `json:"events,omitempty"`
}

// Parse reads a notify file (YAML or JSON); unknown fields are errors, so a
// typo is not a silently dead target.
func Parse(data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("notify file: %w", err)
	}
	if len(c.Targets) == 0 {
		return nil, fmt.Errorf("notify file: no targets")
	}
	for i := range c.Targets {
		t := &c.Targets[i]
		if t.Name == "" {
			t.Name = t.Kind
		}
		switch t.Kind {
		case KindWebhook:
			if t.SecretFile == "" {
				return nil, fmt.Errorf("notify target %q: a webhook needs secretFile", t.Name)
			}
		case KindSlack, KindAlertmanager:
		default:
			return nil, fmt.Errorf("notify target %q: kind %q is not webhook, slack or alertmanager", t.Name, t.Kind)
		}
		u, err := url.Parse(t.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("notify target %q: url %q is not an http(s) URL", t.Name, t.URL)
		}
		for _, e := range t.Events {
			if !knownEvent(e) {
				return nil, fmt.Errorf("notify target %q: unknown event %q", t.Name, e)
			}
		}
	}
	return &c, nil
}

// LoadFile reads and parses the notify file at path.
func LoadFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("notify file %s: %w", path, err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
