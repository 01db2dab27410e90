//go:build unix

package pgtest

import (
	"errors"
	"os/exec"
	"syscall"
)

// apply makes cmd run as the user: what `runuser -u postgres --` does,
// without needing runuser (or setpriv) on the machine.
func (a *runAs) apply(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{
		Uid: uint32(a.uid), Gid: uint32(a.gid), Groups: []uint32{},
	}}
	cmd.Env = append(cmd.Env, "HOME=/", "USER="+a.name, "LOGNAME="+a.name)
	return nil
}

// alive reports whether process pid exists.
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
