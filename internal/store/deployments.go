package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Deployment is the GitHub Deployment of one stage execution.
type Deployment struct {
	ExecutionID string
	Repo        string
	Environment string
	// ID is GitHub's deployment id; 0 means its creation was intended and
	// may or may not have happened.
	ID    int64
	State string // the last status posted; "" before the first
}

// Deployments remembers the GitHub Deployments of stage executions and the
// API calls each merge cost.
type Deployments interface {
	// Deployment reads the execution's deployment; found is false when none
	// was ever intended.
	Deployment(ctx context.Context, executionID string) (d Deployment, found bool, err error)
	SaveDeployment(ctx context.Context, d Deployment) error
	// ActiveDeployment is the newest deployment of environment in repo
	// whose last status is success, other than the execution's own.
	ActiveDeployment(ctx context.Context, repo, environment, exceptExecution string) (Deployment, bool, error)
	// AddAPICalls adds n to the GitHub API calls the run has cost. id is
	// the run's, or one of its rollouts': a merge's budget covers the
	// rollouts of every pipeline it runs.
	AddAPICalls(ctx context.Context, id string, n int) error
	// APICalls is what the run (id: the run's, or one of its rollouts')
	// has cost so far.
	APICalls(ctx context.Context, id string) (int, error)
}

const deploymentColumns = `execution_id, repo, environment, deployment_id, state`

func scanDeployment(sc interface{ Scan(...any) error }) (Deployment, error) {
	var d Deployment
	err := sc.Scan(&d.ExecutionID, &d.Repo, &d.Environment, &d.ID, &d.State)
	return d, err
}

// Deployment implements Deployments.
func (s *queries) Deployment(ctx context.Context, executionID string) (Deployment, bool, error) {
	d, err := scanDeployment(s.r.QueryRowContext(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE execution_id = ?`, executionID))
	if errors.Is(err, sql.ErrNoRows) {
		return Deployment{}, false, nil
	}
	if err != nil {
		return Deployment{}, false, fmt.Errorf("deployment of execution %s: %w", executionID, err)
	}
	return d, true, nil
}

// SaveDeployment implements Deployments.
func (s *queries) SaveDeployment(ctx context.Context, d Deployment) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO deployments (`+deploymentColumns+`, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (execution_id) DO UPDATE SET deployment_id = excluded.deployment_id, state = excluded.state, updated_at = excluded.updated_at`,
		d.ExecutionID, d.Repo, d.Environment, d.ID, d.State, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("save deployment of execution %s: %w", d.ExecutionID, err)
	}
	return nil
}

// ActiveDeployment implements Deployments.
func (s *queries) ActiveDeployment(ctx context.Context, repo, environment, exceptExecution string) (Deployment, bool, error) {
	d, err := scanDeployment(s.r.QueryRowContext(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE repo = ? AND environment = ? AND state = 'success' AND execution_id <> ? AND deployment_id <> 0
		ORDER BY updated_at DESC LIMIT 1`, repo, environment, exceptExecution))
	if errors.Is(err, sql.ErrNoRows) {
		return Deployment{}, false, nil
	}
	if err != nil {
		return Deployment{}, false, fmt.Errorf("active deployment of %s in %s: %w", repo, environment, err)
	}
	return d, true, nil
}

// AddAPICalls implements Deployments.
func (s *queries) AddAPICalls(ctx context.Context, id string, n int) error {
	if n == 0 {
		return nil
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE runs SET api_calls = api_calls + ? WHERE id = `+runOf, n, id, id); err != nil {
		return fmt.Errorf("count API calls of run %s: %w", id, err)
	}
	return nil
}

// runOf is the id of the run that the id given twice names: a rollout's
// run, or the run of that id.
const runOf = `coalesce((SELECT run_id FROM rollouts WHERE rollouts.id = ?), ?)`

// APICalls implements Deployments.
func (s *queries) APICalls(ctx context.Context, id string) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT api_calls FROM runs WHERE id = `+runOf, id, id).Scan(&n); err != nil {
		return 0, fmt.Errorf("API calls of run %s: %w", id, err)
	}
	return n, nil
}
