package callcount

import "testing"

func TestDockerRoute(t *testing.T) {
	for _, tc := range []struct{ method, path, want string }{
		// Version prefixes go, whatever the version.
		{"HEAD", "/_ping", "/_ping"},
		{"GET", "/v1.41/_ping", "/_ping"},
		{"GET", "/v1.41", "/"},
		{"GET", "/v1.51/info", "/info"},
		{"GET", "/v2/version", "/version"},
		{"GET", "/v1.41/events", "/events"},
		{"GET", "/vfoo/info", "/vfoo/info"},
		{"GET", "/v.1/info", "/v.1/info"},
		{"GET", "/v1x/info", "/v1x/info"},
		// Services.
		{"GET", "/v1.41/services", "/services"},
		{"POST", "/v1.41/services/create", "/services/create"},
		{"GET", "/v1.41/services/kq8g1dc5s1o2", "/services/{id}"},
		{"GET", "/v1.41/services/factory-proxy", "/services/{id}"},
		{"POST", "/v1.41/services/kq8g1dc5s1o2/update", "/services/{id}/update"},
		{"DELETE", "/v1.41/services/kq8g1dc5s1o2", "/services/{id}"},
		{"GET", "/v1.41/services/kq8g1dc5s1o2/logs", "/services/{id}/logs"},
		// A service called "create" is an object, not a verb, below the top.
		{"GET", "/v1.41/services/create/logs", "/services/{id}/logs"},
		{"DELETE", "/v1.41/services/create", "/services/{id}"},
		// Tasks, nodes, containers, exec, networks, volumes, secrets, configs.
		{"GET", "/v1.41/tasks", "/tasks"},
		{"GET", "/v1.41/tasks/abc", "/tasks/{id}"},
		{"GET", "/v1.41/tasks/abc/logs", "/tasks/{id}/logs"},
		{"GET", "/v1.41/nodes/xyz", "/nodes/{id}"},
		{"POST", "/v1.41/nodes/xyz/update", "/nodes/{id}/update"},
		{"GET", "/v1.41/containers/json", "/containers/json"},
		{"POST", "/v1.41/containers/create", "/containers/create"},
		{"POST", "/v1.41/containers/prune", "/containers/prune"},
		{"GET", "/v1.41/containers/4fa6e0f0c678/json", "/containers/{id}/json"},
		{"POST", "/v1.41/containers/4fa6e0f0c678/start", "/containers/{id}/start"},
		{"GET", "/v1.41/containers/4fa6e0f0c678/attach/ws", "/containers/{id}/attach/ws"},
		{"DELETE", "/v1.41/containers/4fa6e0f0c678", "/containers/{id}"},
		{"POST", "/v1.41/exec/e1/start", "/exec/{id}/start"},
		{"GET", "/v1.41/exec/e1/json", "/exec/{id}/json"},
		{"GET", "/v1.41/networks", "/networks"},
		{"POST", "/v1.41/networks/create", "/networks/create"},
		{"POST", "/v1.41/networks/n1/connect", "/networks/{id}/connect"},
		{"GET", "/v1.41/volumes/data", "/volumes/{id}"},
		{"POST", "/v1.41/volumes/prune", "/volumes/prune"},
		{"POST", "/v1.41/secrets/create", "/secrets/create"},
		{"POST", "/v1.41/secrets/s1/update", "/secrets/{id}/update"},
		{"GET", "/v1.41/configs/c1", "/configs/{id}"},
		// Images and plugins: names with slashes and tags.
		{"GET", "/v1.41/images/json", "/images/json"},
		{"POST", "/v1.41/images/create", "/images/create"},
		{"GET", "/v1.41/images/get", "/images/get"},
		{"GET", "/v1.41/images/local/worker:1/json", "/images/{id}/json"},
		{"GET", "/v1.41/images/registry.example:5000/a/b:2/history", "/images/{id}/history"},
		{"POST", "/v1.41/images/local/worker:1/tag", "/images/{id}/tag"},
		{"GET", "/v1.41/images/sha256:abcd/json", "/images/{id}/json"},
		{"GET", "/v1.41/images/json/json", "/images/{id}/json"},
		{"DELETE", "/v1.41/images/local/worker:1", "/images/{id}"},
		{"DELETE", "/v1.41/images/json", "/images/{id}"},
		{"GET", "/v1.41/plugins/vieux/sshfs:latest/json", "/plugins/{id}/json"},
		{"POST", "/v1.41/plugins/pull", "/plugins/pull"},
		{"GET", "/v1.41/distribution/local/worker:1/json", "/distribution/{id}/json"},
		// No ids here.
		{"GET", "/v1.41/swarm", "/swarm"},
		{"POST", "/v1.41/swarm/update", "/swarm/update"},
		{"GET", "/v1.41/system/df", "/system/df"},
		{"GET", "/services/", "/services/"},
		{"GET", "", ""},
		{"GET", "relative/path", "relative/path"},
	} {
		if got := DockerRoute(tc.method, tc.path); got != tc.want {
			t.Errorf("DockerRoute(%s, %q) = %q, want %q", tc.method, tc.path, got, tc.want)
		}
	}
}
