package console

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestSendCommandFromForm: a command typed into the Send view's form goes to
// ship1 and ship2 (a dry run first shows where it would go); the receipt
// links to the message page, which shows it succeed on both with each
// node's output.
func TestSendCommandFromForm(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1")
	f.Start("ship2")
	f.WaitOnline("ship1", "ship2")

	b := newBrowser(t, f.url(""))
	b.open("/send")
	b.typeInto("#send-targets", "ship1,ship2")
	b.typeInto("#send-command", "echo console-says-hello; pwd")
	b.typeInto("#send-timeout", "20")

	b.click(`#command-form button[value="dry"]`)
	b.wait("the dry run's answer", `(document.querySelector('#send-result h2') || {}).textContent === 'Dry run: 1 of 1 message would be sent'`, 20*time.Second)
	if got := b.text("#send-result .nodes"); got != "ship1, ship2" {
		t.Errorf("dry run resolves to %q, want ship1, ship2", got)
	}
	if n := eval[int](b, `document.querySelectorAll('#send-result a.message-link').length`); n != 0 {
		t.Errorf("a dry run shows %d message links", n)
	}

	b.click(`#command-form button[value="send"]`)
	b.wait("the receipt's link", `document.querySelector('#send-result a.message-link')`, 20*time.Second)
	id := b.text("#send-result a.message-link")
	b.click("#send-result a.message-link")
	b.wait("the message page", `document.getElementById('main').dataset.page === 'message'`, 20*time.Second)
	if got := eval[string](b, `location.pathname`); got != "/messages/"+id {
		t.Errorf("the link went to %s, want /messages/%s", got, id)
	}

	for _, node := range []string{"ship1", "ship2"} {
		section := `section.delivery[data-node="` + node + `"]`
		b.wait(node+" succeeded", `(document.querySelector('`+section+` .status') || {}).textContent === 'succeeded'`, 30*time.Second)
		b.wait(node+"'s output", `((document.querySelector('`+section+` pre.output') || {}).textContent || '').includes('console-says-hello')`, 10*time.Second)
		out := b.text(section + " pre.output")
		if !strings.Contains(out, "/"+node+"/") {
			t.Errorf("%s's output does not show its own folder:\n%s", node, out)
		}
		if steps := eval[string](b, `[...document.querySelectorAll('`+section+` .timeline .step')].map(e => e.textContent).join(' ')`); steps != "pending delivered running succeeded" {
			t.Errorf("%s's timeline: %q", node, steps)
		}
	}
	b.wait("the message done", `(document.getElementById('message-state') || {}).textContent === 'done'`, 30*time.Second)
	if hidden := eval[bool](b, `document.getElementById('cancel').hidden`); !hidden {
		t.Error("a done message still offers Cancel")
	}
}

// TestSendShowsFieldErrors: messages the sender refuses show its error on
// the field it names — on the form's box when the form was used, below the
// JSON otherwise — marked invalid for assistive technology; nothing is sent.
func TestSendShowsFieldErrors(t *testing.T) {
	f := newFleet(t)
	f.Start("central")
	f.Start("ship1")
	f.WaitOnline("ship1")

	b := newBrowser(t, f.url(""))
	b.open("/send")

	// A negative methodTimeout: on the timeout box.
	b.typeInto("#send-targets", "ship1")
	b.typeInto("#send-command", "true")
	b.typeInto("#send-timeout", "-3")
	b.click(`#command-form button[value="send"]`)
	b.wait("the timeout's error", `document.getElementById('send-timeout-error')`, 20*time.Second)
	fieldErrorShown(t, b, "send-timeout", "negative")
	if n := eval[int](b, `document.querySelectorAll('#send-result a.message-link').length`); n != 0 {
		t.Errorf("a refused message shows %d message links", n)
	}

	// A target that is no node name: on the targets box; the timeout's
	// error is gone once it is fixed.
	b.clear("#send-targets")
	b.clear("#send-timeout")
	b.typeInto("#send-targets", "ship1,no/such/node")
	b.click(`#command-form button[value="send"]`)
	b.wait("the targets' error", `document.getElementById('send-targets-error')`, 20*time.Second)
	fieldErrorShown(t, b, "send-targets", "")
	if eval[bool](b, `!!document.getElementById('send-timeout-error') || document.getElementById('send-timeout').hasAttribute('aria-invalid')`) {
		t.Error("the timeout's old error is still shown")
	}

	// An unknown method in the JSON: below the JSON, naming the field.
	b.typeInto("#send-json", `{"toNode": "ship1", "method": "REQNoSuchMethod"}`)
	b.click(`#json-form button[value="send"]`)
	b.wait("the JSON's error", `!document.getElementById('send-json-error').hidden`, 20*time.Second)
	fieldErrorShown(t, b, "send-json", "field method")
	b.screenshot("send-errors")
	if got := b.text("#send-json-error"); !strings.Contains(got, "REQNoSuchMethod") {
		t.Errorf("the JSON's error does not name the method: %q", got)
	}

	// A file loaded into the box: one of the original examples, dry run.
	example, err := filepath.Abs(filepath.Join(examplesDir, "cli-command.json"))
	if err != nil {
		t.Fatal(err)
	}
	b.do(10*time.Second, "upload "+example, chromedp.SetUploadFiles(chromedp.CSS("#send-file"), []string{example}))
	b.wait("the file in the box", `document.getElementById('send-json').value.includes('"fileName": "some.log"')`, 10*time.Second)
	if eval[bool](b, `!document.getElementById('send-json-error').hidden`) {
		t.Error("the old error is still shown after a file was loaded")
	}
	b.click(`#json-form button[value="dry"]`)
	b.wait("the example's dry run", `(document.querySelector('#send-result h2') || {}).textContent === 'Dry run: 1 of 1 message would be sent' && document.querySelector('#send-result .nodes').textContent === 'ship1'`, 20*time.Second)

	// JSON that is no JSON never leaves the page.
	b.clear("#send-json")
	b.typeInto("#send-json", `[{"toNode": "ship1",]`)
	b.click(`#json-form button[value="dry"]`)
	b.wait("the JSON's syntax error", `(document.getElementById('send-json-error').textContent || '').startsWith('This is not JSON')`, 10*time.Second)
}

// fieldErrorShown checks that control id shows an error containing want:
// an alert next to it that its aria-describedby names, and aria-invalid.
func fieldErrorShown(t *testing.T, b *browser, id, want string) {
	t.Helper()
	errID := id + "-error"
	got := b.text("#" + errID)
	if got == "" || !strings.Contains(got, want) {
		t.Errorf("%s's error: %q, want one containing %q", id, got, want)
	}
	if !eval[bool](b, `document.getElementById(`+jsString(errID)+`).matches('.field-error[role=alert]')`) {
		t.Errorf("%s's error is not a .field-error alert", id)
	}
	if v := eval[string](b, `document.getElementById(`+jsString(id)+`).getAttribute('aria-invalid') || ''`); v != "true" {
		t.Errorf("%s: aria-invalid=%q", id, v)
	}
	if d := eval[string](b, `document.getElementById(`+jsString(id)+`).getAttribute('aria-describedby') || ''`); !strings.Contains(" "+d+" ", " "+errID+" ") {
		t.Errorf("%s: aria-describedby=%q does not name %s", id, d, errID)
	}
	t.Logf("%s: %s", id, got)
}
