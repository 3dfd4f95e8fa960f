package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardfleet/steward/internal/client"
	"github.com/stewardfleet/steward/internal/sender"
	"github.com/stewardfleet/steward/internal/status"
	"github.com/stewardfleet/steward/internal/target"
)

// sendOptions are the flags of send.
type sendOptions struct {
	file           string
	wait           bool
	strict         bool
	timeout        *durationValue
	output         *outputFormat
	targets        []string
	dryRun         bool
	maxConcurrency limitValue
	maxErrors      limitValue
	expiry         *durationValue
}

func newSendCmd(a *app) *cobra.Command {
	o := sendOptions{timeout: newDurationValue(0), expiry: newDurationValue(defaultNodeExpiry)}
	cmd := &cobra.Command{
		Use:   "send -f FILE",
		Short: "Send messages to nodes and optionally wait for their results",
		Long: `Send the messages in FILE (a JSON array of messages, or one message; "-"
reads standard input) and print one line per message sent: its ID, method
and nodes ("<id> <method> <node1,node2>", as the node's socket answers). A
message that is rejected is reported on standard error as "error: message
N: reason (code)" (N counts from 1); the others are still sent.

With --wait, send waits until every delivery has ended and its reply has
been handled here (the reply file exists), showing progress on standard
error, then prints a table of the results (NODE, STATUS, EXIT, OUTPUT, and
MESSAGE when several messages were sent; a reply's row under its
delivery). --timeout bounds the whole command, connecting and storing
included, and implies --wait. With -o json it prints one JSON object
instead, {"receipts": [...], "records": [...]}, for scripts (-o yaml: the
same as YAML).

A target node that the node registry has never seen (a misspelt name:
shp1 for ship1) is warned about on standard error, with the names it is
close to; --strict refuses to send then. While --wait waits, its progress
says which targets are offline and since when.

Targets may be expressions, resolved against the node registry when the
message is sent: "*" in toNodes is every node of the registry (offline
ones included: their deliveries wait for them; nodes not seen for longer
than --node-expiry left out), and "role=db,site=north" every node whose
labels hold all of these. --target adds such an expression to every
message (several --target flags: a node matching any of them). An
expression that matches no node refuses its message (missing_target).
--dry-run resolves and checks everything, prints each message's nodes, and
sends nothing.

--max-concurrency N (or N% of the send's deliveries) sends to at most N
nodes at a time: to the next as deliveries end (it implies --wait), all
under the message's one ID. --max-errors N (or N%) stops sending once N
deliveries did not succeed: the nodes not sent to are listed, and
"steward status <id>" shows them cancelled (not_sent).

A message may carry its own "id" (letters and digits): sending it again
then sends nothing new, and "steward status <id>" finds it even if this
command's output was lost.

The command connects to --broker-address, or to the embedded broker on
--broker-listen when none is set, as node --node-name. When the broker
cannot be reached and a node runs beside this command (its data folder is
here), the messages are kept in that node's outbox and the node sends them
when it can: their lines end "queued: the broker cannot be reached; it is
sent when it can".

Exit codes:
  0  every message was sent or queued (and with --wait every delivery succeeded)
  1  some message was rejected, or (with --wait) some delivery or reply did not succeed
  2  usage or input error: bad flags, unreadable file, no valid message
  3  the broker cannot be reached (with --wait: even if the messages were queued)
  4  --timeout passed before every delivery ended`,
		Example: `  # Send the messages in msg.json
  steward send -f msg.json

  # Send one message from standard input and wait for its result
  echo '{"toNode":"ship1","method":"REQCliCommand","methodArgs":["uptime"]}' | steward send -f - --wait

  # Wait at most 2 minutes and print JSON for a script
  steward send -f msg.json --timeout 2m -o json > results.json

  # Every database node in the north, 5 at a time, stopping after 2 failures
  steward send -f upgrade.json --target role=db,site=north --max-concurrency 5 --max-errors 2

  # Which nodes would it reach?
  steward send -f upgrade.json --target '*' --dry-run`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.send(cmd, o) },
	}
	fs := cmd.Flags()
	fs.StringVarP(&o.file, "file", "f", "", "`file` of messages: a JSON array or one object; - reads standard input")
	fs.BoolVar(&o.wait, "wait", false, "wait until every delivery has ended and print the results")
	fs.BoolVar(&o.strict, "strict", false, "refuse to send when a target node has never been seen in the node registry")
	fs.Var(o.timeout, "timeout", "the longest to wait, implies --wait (seconds or a Go duration; 0: no limit)")
	fs.StringArrayVar(&o.targets, "target", nil, "add the nodes matching `selector` (role=db,site=north, or * for every node) to every message; repeatable: a node matching any")
	fs.BoolVar(&o.dryRun, "dry-run", false, "resolve and check the messages, print the nodes each would go to, send nothing")
	fs.Var(&o.maxConcurrency, "max-concurrency", "send to at most N nodes (or N% of them) at a time, to more as deliveries end; implies --wait")
	fs.Var(&o.maxErrors, "max-errors", "with --max-concurrency: send to no more nodes once N deliveries (or N% of them) did not succeed")
	fs.Var(o.expiry, "node-expiry", "target expressions leave out nodes not seen for longer than this (0: none; $"+envNodeExpiry+")")
	o.output = addOutputFlag(cmd)
	addConfigFlags(fs, clientKeys()...)
	return cmd
}

// sendResult is send's JSON output.
type sendResult struct {
	Receipts []client.Receipt `json:"receipts"`
	Records  []*status.Record `json:"records,omitempty"`
	// DryRun says nothing was sent: the receipts say where each message
	// would go.
	DryRun bool `json:"dryRun,omitempty"`
}

func (a *app) send(cmd *cobra.Command, o sendOptions) error {
	if o.file == "" {
		return usageError(cmd, errors.New("no input: give -f FILE, or -f - for standard input"))
	}
	for _, t := range o.targets {
		if _, err := target.ParseSelector(t); err != nil {
			return usageError(cmd, fmt.Errorf("--target: %w", err))
		}
	}
	if o.maxErrors.set && !o.maxConcurrency.set {
		return usageError(cmd, errors.New("--max-errors needs --max-concurrency: with every delivery sent at once there is nothing left to stop"))
	}
	expiry, err := nodeExpiry(cmd, o.expiry)
	if err != nil {
		return err
	}
	input, err := a.readInput(o.file)
	if err != nil {
		return exitError(ExitUsage, err)
	}
	// --timeout bounds the whole command: connecting and storing the
	// messages too, not only the wait for results.
	ctx := cmd.Context()
	if *o.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(*o.timeout))
		defer cancel()
		cmd.SetContext(ctx)
	}
	fl, err := a.connectClient(cmd)
	if err != nil {
		if errors.Is(err, client.ErrUnreachable) && !o.dryRun && !o.maxConcurrency.set {
			// The node beside this command keeps the messages until the
			// broker can be reached.
			if handled, qerr := a.sendQueued(cmd, input, o); handled {
				return qerr
			}
		}
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return exitError(ExitTimeout, fmt.Errorf("timeout %s passed while connecting: %w", o.timeout, err))
		}
		return err
	}
	defer fl.Close()

	fleetNodes, err := a.checkTargets(ctx, fl, input, o.strict)
	if err != nil {
		return err
	}
	rolling := o.maxConcurrency.set && !o.dryRun
	receipts, err := fl.SendWith(ctx, input, client.SendOptions{Targets: o.targets, Expiry: expiry, Hold: o.dryRun || rolling})
	if err == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("timeout %s passed while storing the messages", o.timeout)
		for _, r := range receipts {
			if r.ID == "" || r.Error != "" {
				fmt.Fprintln(a.stderr, r.Line())
			} else {
				fmt.Fprintln(a.stdout, r.Line())
			}
		}
		return exitError(ExitTimeout, err)
	}
	if err != nil {
		// Send fails as a whole only on input it cannot read.
		if errors.Is(err, client.ErrUnreachable) {
			return exitError(ExitUnreachable, err)
		}
		return exitError(ExitUsage, err)
	}
	if o.dryRun {
		return a.dryRun(receipts, o)
	}
	var ids []string
	deliveries, rejected := 0, 0
	for _, r := range receipts {
		if r.ID == "" || r.Error != "" {
			rejected++
			fmt.Fprintln(a.stderr, r.Line())
			continue
		}
		ids = append(ids, r.ID)
		ids = append(ids, r.Runs...) // a repeated message's later runs
		deliveries += len(r.Nodes) * (1 + len(r.Runs))
		if *o.output == outputTable {
			fmt.Fprintln(a.stdout, r.Line())
		}
	}
	res := sendResult{Receipts: receipts}
	if len(ids) == 0 {
		if o.output.structured() {
			if err := writeOutput(a.stdout, *o.output, res); err != nil {
				return err
			}
		}
		if len(receipts) == 0 {
			return exitError(ExitUsage, errors.New("no message in the input"))
		}
		if allPublishFailed(receipts) {
			return exitError(ExitUnreachable, errors.New("the broker stored no message"))
		}
		return exitError(ExitUsage, errors.New("no message was sent"))
	}

	var waitErr error
	if o.wait || *o.timeout > 0 || rolling {
		waitCtx := ctx
		p := newProgress(a.stderr, deliveries, len(ids) > 1)
		p.absent = fleetNodes.absent(receipts)
		p.announce()
		wo := client.WaitOptions{Progress: p.update}
		var r *rollout
		if rolling {
			r = newRollout(fl, receipts, o.maxConcurrency.of(deliveries), 0)
			if o.maxErrors.set {
				r.maxErrors = o.maxErrors.of(deliveries)
			}
			p.notYet = r.notYet
			r.start(ctx)
			wo.Progress = func(rec *status.Record) {
				r.update(ctx, rec)
				p.update(rec)
			}
			wo.More = r.more
		}
		res.Records, waitErr = fl.WaitWith(waitCtx, ids, wo)
		p.finish()
		if r != nil {
			res.Records = a.endRollout(ctx, r, res.Records)
		}
		switch {
		case waitErr == nil:
		case errors.Is(waitCtx.Err(), context.DeadlineExceeded):
			waitErr = exitError(ExitTimeout, fmt.Errorf("timeout %s passed before every delivery ended", o.timeout))
		default:
			waitErr = exitError(ExitUnreachable, fmt.Errorf("wait: %w", waitErr))
		}
		if *o.output == outputTable && len(res.Records) > 0 {
			fmt.Fprintln(a.stdout)
			if err := deliveriesTable(a.stdout, res.Records, len(ids) > 1); err != nil {
				return err
			}
		}
	}
	if o.output.structured() {
		if err := writeOutput(a.stdout, *o.output, res); err != nil {
			return err
		}
	}
	if waitErr != nil {
		return waitErr
	}
	var problems []string
	if rejected > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d messages rejected", rejected, len(receipts)))
	}
	failed, total, replyFailed := 0, 0, 0
	for _, r := range res.Records {
		switch {
		case r.Reply && !r.Status.Success():
			replyFailed++
		case !r.Reply:
			total++
			if !r.Status.Success() {
				failed++
			}
		}
	}
	if failed > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d deliveries did not succeed", failed, total))
	}
	if replyFailed > 0 {
		problems = append(problems, fmt.Sprintf("%d replies could not be handled on this node", replyFailed))
	}
	if len(problems) > 0 {
		return exitError(ExitFailed, errors.New(strings.Join(problems, ", ")))
	}
	return nil
}

// endRollout records the deliveries a send in waves did not send, says
// so on standard error, one line per node, and returns the records with
// theirs added (where the wait did not see them).
func (a *app) endRollout(ctx context.Context, r *rollout, records []*status.Record) []*status.Record {
	why := "steward send stopped before their turn"
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		why = "--timeout passed before their turn"
	}
	// The command's context may have ended: the records are still written.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	withheld, err := r.finish(wctx, why)
	if err != nil {
		fmt.Fprintf(a.stderr, "warning: could not record every node not sent to: %v\n", err)
	}
	seen := map[string]bool{}
	for _, rec := range records {
		seen[rec.Key()] = true
	}
	for _, rec := range withheld {
		fmt.Fprintf(a.stderr, "%s %s: %s\n", rec.ID, rec.Node, rec.Error)
		if !seen[rec.Key()] {
			records = append(records, rec)
		}
	}
	return records
}

// dryRun prints where each message would go, and sends nothing.
func (a *app) dryRun(receipts []client.Receipt, o sendOptions) error {
	valid := 0
	for _, r := range receipts {
		if !r.OK() {
			fmt.Fprintln(a.stderr, r.Line())
			continue
		}
		valid++
		if *o.output == outputTable {
			fmt.Fprintf(a.stdout, "message %d: %s to %d nodes: %s\n", r.Index+1, r.Method, len(r.Nodes), strings.Join(r.Nodes, ","))
		}
	}
	if o.output.structured() {
		if err := writeOutput(a.stdout, *o.output, sendResult{Receipts: receipts, DryRun: true}); err != nil {
			return err
		}
	}
	fmt.Fprintln(a.stderr, "dry run: nothing was sent")
	switch {
	case len(receipts) == 0:
		return exitError(ExitUsage, errors.New("no message in the input"))
	case valid == 0:
		return exitError(ExitUsage, errors.New("no message would be sent"))
	case valid < len(receipts):
		return exitError(ExitFailed, fmt.Errorf("%d of %d messages rejected", len(receipts)-valid, len(receipts)))
	}
	return nil
}

// sendQueued puts the messages into the outbox of the node that runs
// beside this command, when the broker cannot be reached. handled is false
// when there is no such node (the caller then reports the broker
// unreachable); otherwise err is the command's result.
func (a *app) sendQueued(cmd *cobra.Command, input []byte, o sendOptions) (handled bool, err error) {
	l, err := loadConfig(cmd)
	if err != nil {
		return false, err
	}
	receipts, err := a.queue(cmd.Context(), l.cfg, input)
	if errors.Is(err, client.ErrNoOutbox) {
		return false, err
	}
	if err != nil {
		return true, exitError(ExitUsage, err)
	}
	queued := 0
	for _, r := range receipts {
		if !r.Queued {
			fmt.Fprintln(a.stderr, r.Line())
			continue
		}
		queued++
		if *o.output == outputTable {
			fmt.Fprintln(a.stdout, r.Line())
		}
	}
	if o.output.structured() {
		if err := writeOutput(a.stdout, *o.output, sendResult{Receipts: receipts}); err != nil {
			return true, err
		}
	}
	fmt.Fprintf(a.stderr, "the broker cannot be reached: %d messages wait in %s and the node sends them when it can\n", queued, l.cfg.OutboxFolder())
	switch {
	case queued == 0:
		return true, exitError(ExitUsage, errors.New("no message was queued"))
	case o.wait || *o.timeout > 0:
		return true, exitError(ExitUnreachable, errors.New("queued, but cannot wait for results while the broker is out of reach"))
	case queued < len(receipts):
		return true, exitError(ExitFailed, fmt.Errorf("%d of %d messages rejected", len(receipts)-queued, len(receipts)))
	}
	return true, nil
}

// readInput reads the messages: a file, or standard input for "-".
func (a *app) readInput(name string) ([]byte, error) {
	if name == "-" {
		data, err := io.ReadAll(a.stdin)
		if err != nil {
			return nil, fmt.Errorf("read standard input: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	return data, nil
}

// progress shows on standard error how many deliveries have ended: one
// line rewritten in place on a terminal, one line per change otherwise.
type progress struct {
	w      io.Writer
	tty    bool
	total  int
	withID bool

	// absent says, per target node that is offline or was never seen,
	// since when ("offline since …"); deliveries still pending for them
	// show it.
	absent map[string]string
	// notYet, when set (a send in waves), says how many deliveries are
	// not sent yet; the line then counts the deliveries per status.
	notYet func() int

	mu      sync.Mutex
	seen    map[string]*status.Record
	printed bool
}

// announce says, before the wait starts, which targets are not there.
func (p *progress) announce() {
	if len(p.absent) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(p.absent))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + " " + p.absent[n]
	}
	fmt.Fprintf(p.w, "waiting for nodes that are not online: %s\n", strings.Join(parts, "; "))
}

// waitingFor lists the absent nodes that still have a pending delivery.
func (p *progress) waitingFor() []string {
	var out []string
	for _, s := range p.seen {
		if why, ok := p.absent[s.Node]; ok && !s.Reply && s.Status == status.Pending && !slices.Contains(out, s.Node+" "+why) {
			out = append(out, s.Node+" "+why)
		}
	}
	slices.Sort(out)
	return out
}

func newProgress(w io.Writer, total int, withID bool) *progress {
	return &progress{w: w, tty: isTerminal(w), total: total, withID: withID, seen: map[string]*status.Record{}}
}

func (p *progress) update(r *status.Record) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[r.Key()] = r
	done, deliveries := 0, 0
	for _, s := range p.seen {
		if s.Reply {
			continue
		}
		deliveries++
		if s.Done(p.seen[status.ReplyKey(s.Key())]) {
			done++
		}
	}
	total := max(p.total, deliveries)
	counts := ""
	if p.notYet != nil {
		counts = "; " + p.counts()
	}
	if p.tty {
		line := fmt.Sprintf("%d/%d deliveries done%s", done, total, counts)
		if w := p.waitingFor(); len(w) > 0 {
			line += "; waiting for " + strings.Join(w, ", ")
		}
		// \x1b[K clears what a longer line before left.
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.printed = true
		return
	}
	who := r.Node
	if p.withID {
		who = r.ID + " " + r.Node
	}
	if r.Reply {
		who += " reply"
	}
	note := ""
	if why, ok := p.absent[r.Node]; ok && !r.Reply && r.Status == status.Pending {
		note = ", " + why
	}
	fmt.Fprintf(p.w, "%d/%d deliveries done (%s: %s%s)%s\n", done, total, who, r.Status, note, counts)
}

// counts says how many deliveries are in each status, and how many are
// not sent yet: "2 succeeded, 1 running, 5 not sent yet".
func (p *progress) counts() string {
	n := map[status.Status]int{}
	for _, s := range p.seen {
		if !s.Reply {
			n[s.Status]++
		}
	}
	var parts []string
	for _, st := range []status.Status{status.Succeeded, status.Failed, status.ExecutionTimedOut, status.DeliveryTimedOut,
		status.Undeliverable, status.Rejected, status.Cancelled, status.Running, status.Delivered, status.Pending} {
		if n[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n[st], st))
		}
	}
	if k := p.notYet(); k > 0 {
		parts = append(parts, fmt.Sprintf("%d not sent yet", k))
	}
	return strings.Join(parts, ", ")
}

// finish ends the line a terminal shows.
func (p *progress) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.printed {
		fmt.Fprintln(p.w)
		p.printed = false
	}
}

// allPublishFailed reports whether every message was valid but not stored
// by the broker: the broker is the problem, not the input.
func allPublishFailed(receipts []client.Receipt) bool {
	for _, r := range receipts {
		if r.Code != sender.CodePublishFailed {
			return false
		}
	}
	return len(receipts) > 0
}
