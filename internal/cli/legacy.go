package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// legacyFlag maps a flag name of the original steward (camelCase, given
// with one dash: -nodeName=central) to this steward's flag.
func legacyFlag(name string) (string, bool) {
	switch name {
	case "nodeName":
		return "node-name", true
	case "brokerAddress":
		return "broker-address", true
	case "centralNodeName":
		return "central-node-name", true
	case "defaultMessageTimeout":
		return "default-message-timeout", true
	case "defaultMessageRetries":
		return "default-message-retries", true
	case "subscribersDataFolder":
		return "data-folder", true
	case "socketFolder":
		return "socket-folder", true
	case "startPubREQHello":
		return "hello-interval", true
	case "configFolder":
		return "config-folder", true
	case "nkeySeedFile":
		return "nkey-seed-file", true
	case "rootCAPath":
		return "root-ca-path", true
	case "logLevel":
		return "log-level", true
	case "tcpListener":
		return "tcp-listener", true
	case "promHostAndPort":
		return "prom-host-and-port", true
	case "profilingPort":
		return "profiling-port", true
	}
	return "", false
}

// ignoredLegacyFlags are flags of the original steward that this one does
// not need. They are accepted and dropped, with one warning, so that old
// startup scripts keep working. The value says whether the flag takes a
// value (which may then be the next argument).
//
// The startSub* flags of request methods set the methods setting
// (startSubMethods); those left here switched on subscribers of replies and
// events, which every node here always runs, or of methods it does not
// have. enableDebug and enableTUI
// are replaced by --log-level and the CLI. Flags whose loss
// would change what a node may do (keys, TLS, signatures) are not in this
// list: they stay errors.
func ignoredLegacyFlags() map[string]bool {
	return map[string]bool{
		"startSubREQErrorLog":         false,
		"startSubREQHello":            false,
		"startSubREQToFileAppend":     false,
		"startSubREQToFile":           false,
		"startSubREQToFileNACK":       false,
		"startSubREQCopyFileFrom":     false,
		"startSubREQCopyFileTo":       false,
		"startSubREQPong":             false,
		"startSubREQToConsole":        false,
		"startSubREQHttpGetScheduled": false,
		"startSubREQRelay":            false,
		"enableDebug":                 false,
		"enableTUI":                   false,
	}
}

// unbuiltLegacyFlags are flags of the original steward that this one does
// not have, each with what replaces it or what to do. Unlike
// ignoredLegacyFlags they are errors: a node would not do what its
// operator expects (listen on a port, check signatures) without them.
func unbuiltLegacyFlags() map[string]string {
	const (
		socket   = "not built yet: give messages to a node through its socket (<socket-folder>/steward.sock) or with steward send; remove the flag"
		reconn   = "not needed: a node keeps reconnecting to the broker for as long as it runs; remove the flag"
		queue    = "not needed: the broker's JetStream stream is every node's queue; remove the flag"
		notYet   = "not built yet; remove the flag"
		trust    = "replaced by --trusted-keys FILE: a node given that file runs only messages signed by a key it lists; give it instead (see docs/security.md)"
		policy   = "replaced by --policy-file FILE, each node's own policy of who may run what; give it instead (see docs/security.md)"
		keySet   = "not needed: nodes take the fleet's trusted keys from the central node (steward keys trust, steward keys revoke); remove the flag"
		timeouts = "not built yet: set methodTimeout in each message; remove the flag"
	)
	return map[string]string{
		"httpListener":             "replaced by --http-api HOST:PORT, whose POST /v1/messages takes the same JSON (see docs/openapi.yaml)",
		"readFolder":               socket,
		"readfolder":               socket,
		"databaseFolder":           "replaced by --data-folder: a node keeps its state in <data-folder>/.steward",
		"ringBufferSize":           queue,
		"ringBufferPersistStore":   queue,
		"keepPublishersAliveFor":   queue,
		"natsConnOptTimeout":       reconn,
		"natsConnectRetryInterval": reconn,
		"natsReconnectJitter":      reconn,
		"natsReconnectJitterTLS":   reconn,
		"errorMessageTimeout":      notYet,
		"errorMessageRetries":      notYet,
		"exposeDataFolder":         "replaced by --http-api HOST:PORT with --http-data-folder . (GET /v1/files/, behind the API's token)",
		"compression":              "not built yet: messages travel as JSON, uncompressed; remove the flag",
		"serialization":            "not built yet: messages travel as JSON; remove the flag",
		"setBlockProfileRate":      notYet,
		"enableSocket":             "not needed: every node opens its socket; remove the flag",
		"enableSignatureCheck":     trust,
		"allowEmptySignature":      trust,
		"enableAclCheck":           policy,
		"enableAclUpdates":         policy,
		"isCentralAuth":            policy,
		"enableKeyUpdates":         keySet,
		"defaultMethodTimeout":     timeouts,
	}
}

// PrepareArgs rewrites the original steward's flags in args (os.Args
// without the program name) for cobra, prints one warning line to stderr
// for the flags it drops, and returns the arguments to run root with.
// See rewriteLegacyArgs.
func PrepareArgs(root *cobra.Command, args []string, stderr io.Writer) []string {
	out, ignored := rewriteLegacyArgs(args, valueFlags(root))
	if len(ignored) > 0 {
		fmt.Fprintf(stderr, "steward: ignoring flags of the original steward that are not needed: %s\n",
			strings.Join(ignored, " "))
	}
	return out
}

// rewriteLegacyArgs turns the original's flags into this steward's:
// -nodeName=x, -nodeName x, --nodeName=x and --nodeName x become
// --node-name=x or --node-name x. The flags of ignoredLegacyFlags are
// dropped and returned. Only those exact names are touched: every other
// argument is kept as it is, so are the values of flags that take one
// (takesValue tells them by "-f" or "--file") and everything after "--".
//
// Flags given with one dash, Go style (-help, -wait, -tcpListener), are
// given two (see longForm), so that cobra reads them as the long flags
// they are meant to be, or flagError reports them by their name.
//
// The original ran a node without a subcommand (steward -nodeName=ship1);
// when legacy flags are found and no subcommand is given, "node run" is
// put in front.
func rewriteLegacyArgs(args []string, takesValue map[string]bool) (out, ignored []string) {
	ignore, unbuilt := ignoredLegacyFlags(), unbuiltLegacyFlags()
	legacy, command := false, false
	var methods []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			out = append(out, args[i:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			command = true
			out = append(out, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
		if to, ok := legacyFlag(name); ok {
			legacy = true
			if hasValue {
				out = append(out, "--"+to+"="+value)
				continue
			}
			out = append(out, "--"+to)
			if i+1 < len(args) {
				i++
				out = append(out, args[i])
			}
			continue
		}
		if method, ok := startSubMethod(name); ok {
			legacy = true
			if !hasValue {
				value = "true"
			}
			methods = append(methods, method+"="+startSubSenders(value))
			continue
		}
		if withValue, ok := ignore[name]; ok {
			legacy = true
			if withValue && !hasValue && i+1 < len(args) {
				i++
				arg += " " + args[i]
			}
			ignored = append(ignored, arg)
			continue
		}
		if _, ok := unbuilt[name]; ok {
			// An error, from node run (flagError says what to do); its
			// value, if it has one, is not a subcommand.
			legacy = true
			out = append(out, "--"+strings.TrimLeft(arg, "-"))
			if !hasValue && i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				out = append(out, args[i])
			}
			continue
		}
		arg = longForm(arg, name, takesValue)
		out = append(out, arg)
		if !hasValue && takesValue[arg] && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	if len(methods) > 0 {
		out = append(out, "--methods="+strings.Join(methods, "; "))
	}
	if legacy && !command {
		out = append([]string{"node", "run"}, out...)
	}
	return out, ignored
}

// startSubMethod is the request method a -startSubREQ… flag switches: its
// value sets whether the node serves it, and for whom (the methods
// setting, package procs).
func startSubMethod(flag string) (string, bool) {
	method, ok := strings.CutPrefix(flag, "startSub")
	if !ok {
		return "", false
	}
	switch method {
	case "REQCliCommand", "REQnCliCommand", "REQCliCommandCont", "REQnCliCommandCont", "REQHttpGet", "REQTailFile",
		"REQOpProcessList", "REQOpProcessStart", "REQOpProcessStop", "REQPing":
		return method, true
	}
	return "", false
}

// startSubSenders turns a -startSubREQ… value into the methods setting's:
// true serves every node, false none, a list of nodes those.
func startSubSenders(value string) string {
	switch strings.ToLower(strings.TrimSpace(value)) {
	case "true", "1", "*":
		return "*"
	case "false", "0":
		return "off"
	}
	return strings.Join(strings.FieldsFunc(value, func(r rune) bool { return r == ',' || r == ' ' }), " ")
}

// longForm turns a one-dash flag with a long name (-help, -wait=true)
// into its two-dash form. It leaves alone "--x", "-x" (one letter), and
// what may be a shorthand with its value attached (-ojson, -fmsg.json:
// takesValue has "-o" and "-f"), unless the whole name is a flag of the
// tree (-output json, -force).
func longForm(arg, name string, takesValue map[string]bool) string {
	if strings.HasPrefix(arg, "--") || len(name) < 2 {
		return arg
	}
	if _, known := takesValue["--"+name]; !known && takesValue["-"+name[:1]] {
		return arg
	}
	return "-" + arg
}

// valueFlags lists, by "--name" and "-shorthand", the flags anywhere in
// root's tree: true for those that take a value, so their values are
// never rewritten, false for booleans.
func valueFlags(root *cobra.Command) map[string]bool {
	m := map[string]bool{}
	add := func(f *pflag.Flag) {
		takes := f.NoOptDefVal == ""
		m["--"+f.Name] = m["--"+f.Name] || takes
		if f.Shorthand != "" {
			m["-"+f.Shorthand] = m["-"+f.Shorthand] || takes
		}
	}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return m
}
