package methods

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// httpGet fetches the URL in methodArgs[0] from the node it runs on and
// returns the response body as its output.
//
//   - The whole exchange (connecting, TLS, redirects, the body) is bounded by
//     the handler's context: methodTimeout, default 60 s.
//   - The body is kept up to maxHTTPBody (64 MiB, as REQCliCommand's
//     output). A larger body fails the delivery: the first 64 MiB are
//     returned and nothing more is read; a server that announces a larger
//     Content-Length is not read at all.
//   - At most maxHTTPRedirects redirects are followed, and only to http or
//     https URLs.
//   - A status other than 2xx fails the delivery with the status in the
//     error; the body is still the output.
//   - No proxy: HTTP_PROXY, HTTPS_PROXY and NO_PROXY are not honoured, so
//     the node itself connects to the URL, whatever environment its service
//     manager gave it.
//   - No connection outlives the handler (no keep-alive between requests).
//   - The User-Agent is steward/<version>.
var httpGet = Spec{
	Name:           "REQHttpGet",
	Summary:        "fetch a URL over HTTP(S) from the node and return the body",
	Kind:           Command,
	DefaultTimeout: 60 * time.Second,
	Validate:       checks("methodArgs", validateHTTPGet),
	Handler:        runHTTPGet,
}

// maxHTTPBody caps the response body REQHttpGet keeps; a variable so tests
// can make it small.
var maxHTTPBody = 64 << 20

// maxHTTPRedirects is how many redirects REQHttpGet follows.
const maxHTTPRedirects = 5

const httpGetExample = `["https://example.com/"]`

func validateHTTPGet(m *message.Message) error {
	if _, err := httpGetURL(m.MethodArgs); err != nil {
		return fmt.Errorf("%w: %w", err, message.ErrFieldValue)
	}
	return nil
}

// httpGetURL checks methodArgs: exactly one argument, an absolute http or
// https URL with a host and no user name or password (they would be kept
// in the stream, the status records and the audit log for all to read).
func httpGetURL(args []string) (*url.URL, error) {
	switch {
	case len(args) == 0 || args[0] == "":
		return nil, fmt.Errorf("REQHttpGet needs methodArgs: one http or https URL, e.g. %s", httpGetExample)
	case len(args) > 1:
		return nil, fmt.Errorf("REQHttpGet takes one methodArg, the URL, e.g. %s; got %d", httpGetExample, len(args))
	}
	u, err := url.Parse(args[0])
	if err != nil {
		return nil, fmt.Errorf("REQHttpGet: methodArgs[0] is not a URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("REQHttpGet: URL %q must be absolute and start with http:// or https://", args[0])
	case u.Opaque != "" || u.Host == "" || u.Hostname() == "":
		return nil, fmt.Errorf("REQHttpGet: URL %q names no host", args[0])
	case u.User != nil:
		return nil, fmt.Errorf("REQHttpGet: URL %q holds a user name or password; they would be readable in the stream, status and audit log, so steward does not send them", u.Redacted())
	}
	return u, nil
}

// runHTTPGet fetches the URL. Any error comes with the Result when a
// response arrived, so the body read so far is kept; at the deadline the
// error wraps ctx.Err().
func runHTTPGet(ctx context.Context, req *Request) (*Result, error) {
	u, err := httpGetURL(req.Msg.MethodArgs)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadArgs, err)
	}
	target := u.Redacted()

	client := newHTTPClient()
	defer client.CloseIdleConnections()

	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, getError(target, "%w", err)
	}
	hreq.Header.Set("User-Agent", userAgent(req.Env))
	hreq.Header.Set("Accept", "*/*")

	resp, err := client.Do(hreq)
	if err != nil {
		return nil, describeHTTPError(ctx, target, err)
	}
	defer resp.Body.Close()

	where := target
	if final := resp.Request.URL.Redacted(); final != target {
		where = fmt.Sprintf("%s, redirected to %s", target, final)
	}
	// An error about the body of a response that is not 2xx names its
	// status first too.
	failed := ""
	if !httpSuccess(resp.StatusCode) {
		failed = fmt.Sprintf("HTTP %s, and ", resp.Status)
	}
	if resp.ContentLength > int64(maxHTTPBody) {
		return &Result{}, withCode(ErrOutputCap, getError(where, "%sthe server announces a body of %d bytes, over REQHttpGet's cap of %s: nothing was read", failed, resp.ContentLength, sizeText(maxHTTPBody)))
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(maxHTTPBody)+1))
	res := &Result{Output: body}
	switch {
	case readErr != nil && ctx.Err() != nil:
		return res, getError(where, "%sbody cut off after %d bytes: %w", failed, len(body), ctx.Err())
	case readErr != nil:
		return res, getError(where, "%sbody cut off after %d bytes: %w", failed, len(body), unwrapURLError(readErr))
	case len(body) > maxHTTPBody:
		res.Output = body[:maxHTTPBody]
		return res, withCode(ErrOutputCap, getError(where, "%sthe body is over REQHttpGet's cap of %s: the first %s are returned, the rest was not read", failed, sizeText(maxHTTPBody), sizeText(maxHTTPBody)))
	case !httpSuccess(resp.StatusCode):
		return res, withCode(ErrHTTPStatus, getError(where, "HTTP %s", resp.Status))
	}
	return res, nil
}

// httpSuccess reports whether an HTTP status is 2xx.
func httpSuccess(code int) bool { return code >= 200 && code <= 299 }

// newHTTPClient returns a client of its own for one request: no proxy
// (the environment's is not honoured), no connection kept after it, and
// redirects checked by checkHTTPRedirect.
func newHTTPClient() *http.Client {
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            (&net.Dialer{}).DialContext,
		ForceAttemptHTTP2:      true,
		DisableKeepAlives:      true,
		MaxResponseHeaderBytes: 1 << 20,
	}
	return &http.Client{Transport: transport, CheckRedirect: checkHTTPRedirect}
}

// checkHTTPRedirect follows at most maxHTTPRedirects redirects, and only
// to http and https URLs.
func checkHTTPRedirect(next *http.Request, via []*http.Request) error {
	if next.URL.Scheme != "http" && next.URL.Scheme != "https" {
		return fmt.Errorf("redirect to %q not followed: REQHttpGet follows redirects to http and https URLs only", next.URL.Redacted())
	}
	if len(via) > maxHTTPRedirects {
		return fmt.Errorf("stopped after %d redirects", maxHTTPRedirects)
	}
	return nil
}

// describeHTTPError says why no response came, in words an operator can
// act on: a host that does not resolve, a connection refused, a
// certificate not accepted, a redirect not followed, the deadline.
func describeHTTPError(ctx context.Context, target string, err error) error {
	if ctx.Err() != nil {
		return getError(target, "no answer before the deadline: %w", ctx.Err())
	}
	var (
		dnsErr  *net.DNSError
		opErr   *net.OpError
		certErr *tls.CertificateVerificationError
		hostErr x509.HostnameError
		caErr   x509.UnknownAuthorityError
		invErr  x509.CertificateInvalidError
	)
	switch {
	case errors.As(err, &dnsErr):
		return withCode(ErrUnreachable, getError(target, "cannot resolve host %q: %w", dnsErr.Name, dnsErr))
	case errors.As(err, &certErr), errors.As(err, &hostErr), errors.As(err, &caErr), errors.As(err, &invErr):
		return withCode(ErrUnreachable, getError(target, "the server's TLS certificate is not accepted: %w", unwrapURLError(err)))
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return withCode(ErrUnreachable, getError(target, "cannot connect to %s: %w", opErr.Addr, opErr.Err))
	}
	return getError(target, "%w", unwrapURLError(err))
}

// getError is an error of a GET of target: what went wrong first, so that a
// status table's narrow column shows it ("HTTP 404 Not Found"), then the
// URL in parentheses.
func getError(target, format string, args ...any) error {
	return fmt.Errorf(format+" (GET %s)", append(args, target)...)
}

// unwrapURLError drops net/http's *url.Error wrapper, which repeats the
// method and URL our messages already give.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && ue.Err != nil {
		return ue.Err
	}
	return err
}

// userAgent is steward/<version>, the version reduced to characters an
// HTTP product token allows.
func userAgent(env *Env) string {
	v := ""
	if env != nil {
		v = env.Version
	}
	v = strings.Map(func(r rune) rune {
		if r < 0x80 && (r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return r
		}
		return '-'
	}, v)
	if v == "" {
		v = "unknown"
	}
	return "steward/" + v
}
