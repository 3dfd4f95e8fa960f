package procguard

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// The node and its guard talk over a unix SOCK_SEQPACKET socket pair (the
// guard's end is its file descriptor 3): one JSON message per packet, and a
// start request carries the command's standard output and standard error
// as file descriptors (SCM_RIGHTS), so the command writes straight into
// the node's pipes. When either side ends, the other reads end-of-file.

// guardFD is the guard's end of the control socket.
const guardFD = 3

// maxPacket bounds one message (a start request carries the environment).
const maxPacket = 1 << 20

// request is from the node to the guard.
type request struct {
	Op        string        `json:"op"` // "start" (with 2 descriptors) or "kill"
	ID        uint64        `json:"id"`
	Path      string        `json:"path,omitempty"`
	Args      []string      `json:"args,omitempty"`
	Env       []string      `json:"env,omitempty"`
	Dir       string        `json:"dir,omitempty"`
	Record    string        `json:"record,omitempty"`
	WaitDelay time.Duration `json:"wait_delay,omitempty"`
}

// event is from the guard to the node.
type event struct {
	Op string `json:"op"` // "exited" or "stopping"
	ID uint64 `json:"id"`
	// Code is the exit code (128+n for signal n); Killed says the guard's
	// kill (the node's request) ended the command.
	Code   int  `json:"code"`
	Killed bool `json:"killed,omitempty"`
	// OutputCut says the guard stopped copying the output after WaitDelay.
	OutputCut bool `json:"output_cut,omitempty"`
}

// send writes one message, with files passed along.
func send(conn *net.UnixConn, v any, files ...*os.File) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > maxPacket {
		return fmt.Errorf("procguard: message of %d bytes is over %d", len(b), maxPacket)
	}
	var oob []byte
	if len(files) > 0 {
		fds := make([]int, len(files))
		for i, f := range files {
			fds[i] = int(f.Fd())
		}
		oob = syscall.UnixRights(fds...)
	}
	_, _, err = conn.WriteMsgUnix(b, oob, nil)
	return err
}

// receive reads one message into v and returns the files that came with
// it (close-on-exec: Go's net package receives them so).
func receive(conn *net.UnixConn, buf, oob []byte, v any) ([]*os.File, error) {
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	if n == 0 && oobn == 0 {
		return nil, net.ErrClosed // the peer closed: a zero-length packet is never sent
	}
	var files []*os.File
	if oobn > 0 {
		msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, fmt.Errorf("procguard: control message: %w", err)
		}
		for _, m := range msgs {
			fds, err := syscall.ParseUnixRights(&m)
			if err != nil {
				continue
			}
			for _, fd := range fds {
				files = append(files, os.NewFile(uintptr(fd), "procguard-output"))
			}
		}
	}
	if err := json.Unmarshal(buf[:n], v); err != nil {
		closeAll(files)
		return nil, fmt.Errorf("procguard: bad message: %w", err)
	}
	return files, nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
