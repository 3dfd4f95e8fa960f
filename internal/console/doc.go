// Package console serves the fleet console, a browser view of the fleet on
// the central node (--console, off by default):
//
//	/                  the fleet: every node, online or not and since when,
//	                   last seen, version, labels, methods, queue depth,
//	                   errors in the last hour; filtered, sorted, live
//	/messages          recent messages with their deliveries' states
//	/messages/{id}     one message: each delivery's timeline, output,
//	                   stderr, trace; streamed output followed live; cancel
//	/send              message JSON (pasted or uploaded) or a command form;
//	                   dry runs; the sender's errors on the offending field
//	/errors            central's error log, newest first
//
// The pages are plain HTML, CSS and JavaScript embedded in the binary (no
// build step); they read the JSON API in api.go, and stay live through
// server-sent events fed by KV watches of the registry and the status
// bucket, batched to two a second, never by polling the nodes.
//
// The package guarantees:
//
//   - Who: with a token (the node's http-api-token-file) every request
//     needs it, as "Authorization: Bearer <token>" or the session cookie
//     /login sets after the token was typed in (HttpOnly, SameSite=Strict;
//     it holds a hash of the token, never the token). Without a token the
//     console listens only on loopback (Listen refuses other addresses).
//   - Requests that change something (POST) must carry the header
//     X-Steward-Console: 1, which another site's page cannot send.
//   - Same input, same answer: messages go through the node's sender, as
//     the socket's and the HTTP API's do.
//   - Remote text is shown as text: the pages set textContent only, and a
//     Content-Security-Policy allows no inline script and no other origin.
//   - Size: the fleet view's state is one map of nodes kept by a KV watch;
//     a page load reads that map, not the broker. The message list keeps
//     the newest 5,000 messages.
package console
