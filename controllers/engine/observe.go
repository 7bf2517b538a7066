package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	v1 "reconciler.dev/reconciler/api/v1"
	"reconciler.dev/reconciler/controllers"
)

// observe reads live state from every driver the targets need, at once.
func (e *Engine) observe(ctx context.Context, targets []controllers.Target) (map[string]controllers.Live, error) {
	groups := byDriver(targets)
	var missing []string
	for _, name := range v1.Drivers {
		if len(groups[name]) > 0 && e.Drivers[name] == nil {
			missing = append(missing, string(name))
		}
	}
	if len(missing) > 0 {
		return nil, controllers.Terminal(fmt.Errorf("no driver available for %v", missing))
	}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		errs []error
		live = map[string]controllers.Live{}
	)
	for _, drv := range e.driversFor(groups) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := drv.Observe(ctx, groups[drv.Name()])
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("observe %s: %w", drv.Name(), err))
				return
			}
			for k, v := range l {
				live[k] = v
			}
		}()
	}
	wg.Wait()
	// errors.Join: go-multierror would add only its "N errors occurred"
	// header to what is one line per driver anyway.
	return live, errors.Join(errs...)
}
