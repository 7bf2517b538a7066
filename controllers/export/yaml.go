package export

import (
	"bytes"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	v1 "reconciler.dev/reconciler/api/v1"
)

// Marshal writes a Host as YAML: fields in the order people read them (the
// name first, then what names the live object, then the counts), comments
// at the top. The same Host always gives the same bytes.
func Marshal(h *v1.Host, comments []string) ([]byte, error) {
	doc := mapping(
		"apiVersion", str(h.APIVersion),
		"kind", str(h.Kind),
		"metadata", metadata(h.Metadata),
		"spec", spec(h.Spec),
	)
	root := &yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{doc}}
	if len(comments) > 0 {
		root.HeadComment = "# " + strings.Join(comments, "\n# ")
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func str(s string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	return n
}

func integer(n int32) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(int(n))}
}

func boolean(b bool) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: strconv.FormatBool(b)}
}

// mapping makes a mapping of key, value pairs; a nil value leaves its key
// out.
func mapping(kv ...any) *yaml.Node {
	m := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		v, _ := kv[i+1].(*yaml.Node)
		if v == nil {
			continue
		}
		m.Content = append(m.Content, str(kv[i].(string)), v)
	}
	return m
}

func optStr(s string) *yaml.Node {
	if s == "" {
		return nil
	}
	return str(s)
}

func optInt(n *int32) *yaml.Node {
	if n == nil {
		return nil
	}
	return integer(*n)
}

func optBool(b *bool) *yaml.Node {
	if b == nil {
		return nil
	}
	return boolean(*b)
}

func metadata(m v1.ObjectMeta) *yaml.Node {
	var labels *yaml.Node
	if len(m.Labels) > 0 {
		labels = &yaml.Node{Kind: yaml.MappingNode}
		for _, k := range sortedKeys(m.Labels) {
			labels.Content = append(labels.Content, str(k), str(m.Labels[k]))
		}
	}
	return mapping("name", str(m.Name), "labels", labels)
}

func spec(s v1.HostSpec) *yaml.Node {
	var services, units *yaml.Node
	if len(s.Services) > 0 {
		services = &yaml.Node{Kind: yaml.SequenceNode}
		for _, svc := range s.Services {
			driver := optStr(string(svc.Driver))
			if svc.Driver == v1.DriverSwarm {
				driver = nil // the default
			}
			services.Content = append(services.Content, mapping(
				"name", str(svc.Name),
				"driver", driver,
				"unit", optStr(svc.Unit),
				"project", optStr(svc.Project),
				"program", optStr(svc.Program),
				"socket", optStr(svc.Socket),
				"dir", optStr(svc.Dir),
				"replicas", optInt(svc.Replicas),
				"once", optBool(svc.Once),
				"image", optStr(svc.Image),
			))
		}
	}
	if len(s.Units) > 0 {
		units = &yaml.Node{Kind: yaml.SequenceNode}
		for _, u := range s.Units {
			units.Content = append(units.Content, mapping(
				"name", str(u.Name),
				"enabled", optBool(u.Enabled),
				"active", optBool(u.Active),
			))
		}
	}
	m := mapping("services", services, "units", units)
	if len(m.Content) == 0 {
		// Nothing to declare: an empty spec, still a valid Host.
		return &yaml.Node{Kind: yaml.MappingNode, Style: yaml.FlowStyle}
	}
	return m
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}
