// Package httpapi serves a node's HTTP API (--http-api, off by default):
//
//	POST /v1/messages       the JSON `steward send` takes; answers the receipts
//	GET  /v1/messages/{id}  the status records of every delivery and reply
//	GET  /v1/nodes          the node registry
//	GET  /v1/files/{path}   a read-only view of a folder of the data folder
//	                        (--http-data-folder; off by default)
//
// docs/openapi.yaml describes them. The package guarantees:
//
//   - Who: with a token (--http-api-token-file, a file of mode 0600) every
//     request without "Authorization: Bearer <token>" gets 401, compared in
//     constant time. Without a token the API listens only on loopback:
//     Listen refuses any other address (ErrNoToken), checked on the address
//     given and on the address bound.
//   - HTTPS: with Options.TLS (--http-tls-cert, --http-tls-key) it speaks
//     TLS only; a plain HTTP request gets the TLS server's 400 and reaches
//     no handler.
//   - Same input, same answer: messages go through the node's sender as the
//     socket's and `steward send`'s do, with the same receipts, errors and
//     codes; a whole input that cannot be read is answered with its code
//     (malformed, too_large), and audited by the node.
//   - Limits, as the socket's: a body may be at most 16 MiB (413 beyond,
//     not read further); a body over 64 KiB first reserves 16 MiB of a
//     64 MiB budget (at most 4 such bodies are read at once, others wait);
//     a client that sends nothing for 30 s in its headers or body is
//     dropped; at most 64 connections are served at once.
//   - Files: only what is inside the served folder, never the node's
//     state folder (.steward), no "..", no symbolic links at all (a link
//     could lead into the state folder), only regular files and folders;
//     files are sent as application/octet-stream with nosniff, never
//     rendered as a page.
//   - Shutdown: when its context ends Serve stops accepting, lets requests
//     in progress finish for up to 10 s, and returns.
package httpapi
