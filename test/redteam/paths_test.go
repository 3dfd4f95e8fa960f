package redteam

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/stewardfleet/steward/internal/message"
)

// pathTraversal: replies signed by ship2's stolen key (so the signature is
// good) whose directory, fileName or deliveryId would leave central's
// data folder, reach its state folder or its error log.
func pathTraversal(e *env) {
	c, s2 := e.ship2, e.f.signer(e.t, "ship2")
	n := 0
	try := func(what string, mutate func(m *message.Message)) {
		n++
		m := reply(fmt.Sprintf("rtp%d", n), "ship2", fmt.Sprintf("rtp%d.ship2", n), "loot", "x.log")
		mutate(m)
		e.publish(c, what, "central", sign(e.t, s2, m), "")
	}
	for _, dir := range []string{"..", "../..", "../../../../../../tmp", "a/../../b", ".steward", ".steward/ledger",
		"./.steward/../.steward", "errorLog", "errorLog/central", "x/\x00/y", strings.Repeat("../", 40) + "etc"} {
		try(fmt.Sprintf("directory %.40q", dir), func(m *message.Message) { m.Directory = dir })
	}
	for _, name := range []string{"..", ".", "../x", "../../.steward/ledger/x", "a/b", "x\x00y", "/etc/passwd"} {
		try(fmt.Sprintf("fileName %q", name), func(m *message.Message) { m.FileName = name })
	}
	for _, id := range []string{"..", "../../x", "abc/../..", "x.ship2/../../..", "rtp.ship2/..", ".ship2", "x.", "x..ship2",
		"x.ship2.reply.0", "../.steward/ledger.ship2"} {
		try(fmt.Sprintf("reply deliveryId %q", id), func(m *message.Message) { m.Reply.DeliveryID = id })
	}
}

// symlinks: a link planted in a node's data folder (by a local user, or
// a command an earlier policy allowed) points into the node's state
// folder. Writes through it are refused: a reply from ship2 on central,
// and the operator's own REQToFile on ship1.
func symlinks(e *env) {
	e.goodTo("ship1") // both ledgers have a segment now
	segment := func(node string) (dir, name string) {
		dir = filepath.Join(e.f.data(node), ".steward", "ledger")
		segs, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		if len(segs) == 0 {
			e.t.Fatalf("%s has no ledger segment", node)
		}
		return dir, filepath.Base(segs[0])
	}
	plant := func(link, target string) {
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			e.t.Fatal(err)
		}
	}
	// Central: replies from ship2 go to <directory>/ship2/<fileName>.
	cLedger, cSeg := segment("central")
	cState := filepath.Dir(cLedger)
	plant(filepath.Join(e.f.data("central"), "loot", "ship2"), cLedger)
	plant(filepath.Join(e.f.data("central"), "loot2"), cState)
	plant(filepath.Join(e.f.data("central"), "loot3"), "../data/.steward")
	plant(filepath.Join(e.f.data("central"), "loot4", "ship2"), "ledger-link")
	plant(filepath.Join(e.f.data("central"), "loot4", "ship2", "..", "ledger-link"), cLedger)
	s2 := e.f.signer(e.t, "ship2")
	for i, a := range []struct{ what, dir, file string }{
		{"reply through a linked source folder onto a ledger segment", "loot", cSeg},
		{"reply through a linked folder into the state folder", "loot2/ledger", cSeg},
		{"reply through a relative link into the state folder", "loot3", "instance"},
		{"reply through a chain of links", "loot4", cSeg},
	} {
		m := reply(fmt.Sprintf("rts%d", i), "ship2", fmt.Sprintf("rts%d.ship2", i), a.dir, a.file)
		e.publish(e.ship2, a.what, "central", sign(e.t, s2, m), "")
	}
	// ship1: the operator's REQToFile from central goes to
	// <directory>/central/<fileName>.
	sLedger, sSeg := segment("ship1")
	plant(filepath.Join(e.f.data("ship1"), "loot", "central"), sLedger)
	plant(filepath.Join(e.f.data("ship1"), "loot2"), filepath.Dir(sLedger))
	e.operatorSends("REQToFile through a linked folder onto ship1's ledger", fmt.Sprintf(
		`[{"toNode":"ship1","method":"REQToFile","directory":"loot","fileName":%q,"data":%q},
		  {"toNode":"ship1","method":"REQToFileAppend","directory":"loot","fileName":%q,"data":%q},
		  {"toNode":"ship1","method":"REQToFile","directory":"loot2","fileName":"instance","data":%q}]`, sSeg, pwned, sSeg, pwned, pwned))
}

// oversize: messages too large for the broker, and fields beyond
// steward's limits, into central's queue.
func oversize(e *env) {
	c, s2 := e.ship2, e.f.signer(e.t, "ship2")
	big := newMessage("rto1", "ship2", "central", "REQCliCommand", "echo")
	big.Data = message.Data(strings.Repeat("x", 1<<20))
	e.publish(c, "1 MiB of data (over the broker's max payload)", "central", sign(e.t, s2, big), "")
	args := newMessage("rto2", "ship2", "central", "REQCliCommand", make([]string, message.MaxArgs+1)...)
	e.publish(c, fmt.Sprintf("%d methodArgs", message.MaxArgs+1), "central", sign(e.t, s2, args), "")
	long := newMessage("rto3", "ship2", "central", "REQCliCommand", "echo")
	long.Directory = strings.Repeat("d", message.MaxPathLen+1)
	e.publish(c, "a directory longer than the limit", "central", sign(e.t, s2, long), "")
	name := newMessage("rto4", "ship2", "central", "REQCliCommand", "echo")
	name.FileName = strings.Repeat("f", message.MaxFileNameLen+1)
	e.publish(c, "a fileName longer than the limit", "central", sign(e.t, s2, name), "")
	id := newMessage(strings.Repeat("i", message.MaxIDLen+1), "ship2", "central", "REQCliCommand", "echo")
	e.publish(c, "an id longer than the limit", "central", sign(e.t, s2, id), "")
	from := newMessage("rto5", strings.Repeat("n", message.MaxNodeNameLen+1), "central", "REQCliCommand", "echo")
	e.publish(c, "a fromNode longer than the limit", "central", sign(e.t, s2, from), "")
	timeout := newMessage("rto6", "ship2", "central", "REQCliCommand", "echo")
	timeout.MethodTimeout = int(message.MaxTimeout/time.Second) + 1
	e.publish(c, "a methodTimeout over the limit", "central", sign(e.t, s2, timeout), "")
	retries := newMessage("rto7", "ship2", "central", "REQCliCommand", "echo")
	r := message.MaxRetries + 1
	retries.Retries = &r
	e.publish(c, "retries over the limit", "central", sign(e.t, s2, retries), "")
	chunks := reply("rto8", "ship2", "rto8.ship2", "loot", "x")
	chunks.Reply.Chunks, chunks.Reply.Chunk = message.MaxReplyChunks+1, message.MaxReplyChunks
	e.publish(c, "a reply in too many chunks", "central", sign(e.t, s2, chunks), "")
	e.publish(c, "JSON nested 100,000 deep", "central", []byte(strings.Repeat("[", 100_000)+strings.Repeat("]", 100_000)), "")
	e.publish(c, "not JSON", "central", []byte("\x00\xff not json"), "")
	e.publish(c, "not UTF-8", "central", []byte(`{"id":"rto9","fromNode":"ship2","toNode":"central","method":"REQCliCommand","methodArgs":["echo","`+"\xff\xfe"+`"]}`), "")
	e.publish(c, "an empty message", "central", []byte{}, "")
}

// flood: ship2's key floods central's queue with bad messages while the
// operator sends good ones to both ships; every good one succeeds and its
// reply is written, every bad one is refused.
func flood(e *env) {
	const bad, good = 300, 20
	var msgs []string
	for i := range good {
		msgs = append(msgs, fmt.Sprintf(`{"id":"flood%d","toNode":"ship%d","method":"REQCliCommand","methodArgs":["echo","flood",%q],
		  "replyMethod":"REQToFileAppend","directory":"flood","fileName":"flood%d.log"}`, i, 1+i%2, fmt.Sprint(i), i))
	}
	var wg sync.WaitGroup
	var d, r []record
	wg.Add(1)
	go func() {
		defer wg.Done()
		d, r = e.f.sendWait("[" + strings.Join(msgs, ",") + "]")
	}()
	s2 := e.f.signer(e.t, "ship2")
	for i := range bad {
		id := fmt.Sprintf("rtflood%d", i)
		var m any
		switch i % 4 {
		case 0:
			m = newMessage(id, "central", "central", "REQCliCommand", e.marker(id)...)
		case 1:
			m = sign(e.t, s2, newMessage(id, "central", "central", "REQCliCommand", e.marker(id)...))
		case 2:
			m = sign(e.t, s2, newMessage(id, "ship2", "central", "REQCliCommand", e.marker(id)...))
		case 3:
			m = sign(e.t, s2, reply(id, "ship2", id+".ship2", "../../"+id, "x"))
		}
		e.publish(e.ship2, "flood "+id, "central", m, "")
	}
	wg.Wait()
	sent, ok := 0, 0
	for i := range good {
		sent++
		node := fmt.Sprintf("ship%d", 1+i%2)
		okDelivery := false
		for _, rec := range d {
			if rec.ID == fmt.Sprintf("flood%d", i) && rec.Status == "succeeded" && rec.Output == fmt.Sprintf("flood %d\n", i) {
				okDelivery = true
			}
		}
		file := filepath.Join(e.f.data("central"), "flood", node, fmt.Sprintf("flood%d.log", i))
		b, err := os.ReadFile(file)
		if okDelivery && err == nil && string(b) == fmt.Sprintf("flood %d\n", i) {
			ok++
		} else {
			e.t.Errorf("good message flood%d to %s lost: delivered %v, reply file %q %v", i, node, okDelivery, b, err)
		}
	}
	if len(r) != good {
		e.t.Errorf("%d reply records, want %d", len(r), good)
	}
	e.goodSent, e.goodOK = sent, ok
	e.t.Logf("good messages during the flood: %d sent, %d succeeded with their reply written", sent, ok)
}
