package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

// errBodyClosed is the cancellation cause of a request whose response body
// the caller closed.
var errBodyClosed = errors.New("response body closed")

// classify adds an error class to a transport error that has none yet.
// Errors from dialing already carry theirs. A TLS alert received after
// the handshake is a TLS failure. In TLS 1.3 the client finishes its
// handshake before the server checks the client certificate. A server
// that rejects the certificate, or its absence, therefore sends its alert
// on the first read. Cancellation by the caller and other failures, such
// as a connection closed before the response, stay unclassified.
func classify(err error) error {
	switch {
	case errors.Is(err, ErrUnreachable), errors.Is(err, ErrTLS), errors.Is(err, ErrForbiddenAddress):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case isRemoteAlert(err):
		return fmt.Errorf("%w: %w", ErrTLS, err)
	}
	return err
}

// isRemoteAlert reports whether err is a TLS alert sent by the remote
// server. crypto/tls returns those as a *net.OpError with Op
// "remote error" whose Err has an unexported type.
func isRemoteAlert(err error) bool {
	opErr, ok := errors.AsType[*net.OpError](err)
	return ok && opErr.Op == "remote error"
}

// cancelOnClose is a response body that cancels the request's context once
// closed, so the context of a finished exchange is released.
type cancelOnClose struct {
	io.ReadCloser
	cancel func()
	once   sync.Once
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(b.cancel)
	return err
}
