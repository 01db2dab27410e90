package deploy_test

import (
	"github.com/shipbot/shipbot/internal/deploy"
	"github.com/shipbot/shipbot/internal/deploy/drivers"
)

func init() { deploy.DriversForTest = drivers.New() }
