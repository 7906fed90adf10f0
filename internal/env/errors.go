package env

import (
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// errorJSON renders Lambda's platform error body.
func errorJSON(errorType, msg string) []byte {
	b, _ := json.Marshal(struct {
		ErrorType    string `json:"errorType"`
		ErrorMessage string `json:"errorMessage"`
	}{errorType, msg})
	return b
}

// exitMessage is Lambda's description of a runtime process that ended:
// "Runtime exited with error: exit status 1", "Runtime exited with error:
// signal: killed", or "Runtime exited without providing a reason".
func exitMessage(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Exited() && ws.ExitStatus() == 0 {
			return "Runtime exited without providing a reason"
		}
		return "Runtime exited with error: " + ee.ProcessState.String()
	}
	if err == nil {
		return "Runtime exited without providing a reason"
	}
	return "Runtime exited with error: " + err.Error()
}

// timeoutMessage is "Task timed out after 3.00 seconds".
func timeoutMessage(d time.Duration) string {
	return fmt.Sprintf("Task timed out after %.2f seconds", d.Seconds())
}

func withRequestID(id, msg string) string { return "RequestId: " + id + " Error: " + msg }
