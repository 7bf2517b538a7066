//go:build e2e

package e2e

// The one HTTP client of the tests that talk JSON to a server by hand: the
// agents' endpoints, Gitea's API, Prometheus's API and chromedriver.

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"
)

// httpAnswer is an HTTP answer, read whole.
type httpAnswer struct {
	Code   int
	Status string // as "404 Not Found"
	Body   []byte
}

// decode decodes the answer's body, as JSON, into out.
func (a httpAnswer) decode(out any) error { return json.Unmarshal(a.Body, out) }

// httpCall sends method url, with in (unless nil) as its JSON body and the
// headers given as name, value pairs, giving up after timeout, and reads
// the answer.
func httpCall(timeout time.Duration, method, url string, in any, header ...string) (httpAnswer, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return httpAnswer{}, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return httpAnswer{}, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := (&http.Client{Timeout: timeout}).Do(req)
	if err != nil {
		return httpAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return httpAnswer{Code: resp.StatusCode, Status: resp.Status, Body: b}, err
}
