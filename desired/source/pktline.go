package source

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// pkt-line framing (gitprotocol-common(5)): four hex digits giving the
// length of the line including themselves, then the payload. Lengths 0, 1
// and 2 are the special packets protocol v2 uses to end a message (flush),
// separate its sections (delim) and end a stateless response (response-end).

// pktKind is what one packet is.
type pktKind int

const (
	pktData pktKind = iota
	pktFlush
	pktDelim
	pktResponseEnd
)

// maxPktLen is the longest packet git writes or accepts: 65516 bytes of
// payload plus the four-digit length.
const maxPktLen = 65520

var errPktLen = errors.New("pkt-line: bad length")

// pktReader reads packets from r. It reads no further than the packet it
// returns, so what follows (a sideband pack stream) can be read from r.
type pktReader struct {
	r   *bufio.Reader
	buf [maxPktLen]byte
}

func newPktReader(r *bufio.Reader) *pktReader { return &pktReader{r: r} }

// next returns the next packet; the payload is valid until the next call.
// A clean end of input before any byte of a packet is io.EOF; an end in
// the middle of one is io.ErrUnexpectedEOF.
func (p *pktReader) next() (pktKind, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(p.r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := 0
	for _, c := range hdr {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, nil, fmt.Errorf("%w %q", errPktLen, hdr[:])
		}
		n = n<<4 | int(d)
	}
	switch {
	case n == 0:
		return pktFlush, nil, nil
	case n == 1:
		return pktDelim, nil, nil
	case n == 2:
		return pktResponseEnd, nil, nil
	case n < 4 || n > maxPktLen:
		return 0, nil, fmt.Errorf("%w %q", errPktLen, hdr[:])
	}
	payload := p.buf[:n-4]
	if _, err := io.ReadFull(p.r, payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return pktData, payload, nil
}

// line returns the next packet as a text line (trailing newline removed).
// A packet that starts "ERR " is the server's error message, returned as an
// error.
func (p *pktReader) line() (pktKind, string, error) {
	k, b, err := p.next()
	if err != nil || k != pktData {
		return k, "", err
	}
	s := strings.TrimSuffix(string(b), "\n")
	if msg, ok := strings.CutPrefix(s, "ERR "); ok {
		return k, "", &serverError{msg: msg}
	}
	return k, s, nil
}

// lineInAnswer is line where the answer must go on: the end of the stream
// there is io.ErrUnexpectedEOF.
func (p *pktReader) lineInAnswer() (pktKind, string, error) {
	k, s, err := p.line()
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return k, s, err
}

// serverError is an error the server sent in the protocol ("ERR ...").
type serverError struct{ msg string }

func (e *serverError) Error() string { return "the server said: " + e.msg }

// pktWriter builds a request of packets.
type pktWriter struct{ b []byte }

// line appends one text packet; the newline is added.
func (w *pktWriter) line(s string) {
	w.b = fmt.Appendf(w.b, "%04x%s\n", len(s)+5, s)
}

func (w *pktWriter) delim() { w.b = append(w.b, "0001"...) }
func (w *pktWriter) flush() { w.b = append(w.b, "0000"...) }
