package main

type op struct {
	minArgs, maxArgs int
	observe          bool // observations print a line; other steps print nothing
	run              func(s *scenario, args []string) (string, error)
}

var ops = map[string]op{
	"background":        {1, 1, false, (*scenario).background},
	"todo":              {1, 1, false, (*scenario).todo},
	"with_cancel":       {2, 2, false, (*scenario).withCancel},
	"with_cancel_cause": {2, 2, false, (*scenario).withCancelCause},
	"with_timeout":      {3, 4, false, (*scenario).withTimeout},
	"with_deadline":     {3, 4, false, (*scenario).withDeadline},
	"with_value":        {4, 4, false, (*scenario).withValue},
	"without_cancel":    {2, 2, false, (*scenario).withoutCancel},
	"chain":             {4, 4, false, (*scenario).chain},

	"cancel":       {1, 1, false, (*scenario).cancel},
	"cancel_cause": {2, 2, false, (*scenario).cancelCause},
	"after_func":   {2, 2, false, (*scenario).registerAfterFunc},

	"err":             {1, 1, true, (*scenario).err},
	"cause":           {1, 1, true, (*scenario).cause},
	"done":            {1, 1, true, (*scenario).done},
	"deadline":        {1, 1, true, (*scenario).deadline},
	"deadline_cmp":    {2, 2, true, (*scenario).deadlineCmp},
	"deadline_within": {2, 2, true, (*scenario).deadlineWithin},
	"value":           {2, 2, true, (*scenario).value},
	"wait":            {2, 2, true, (*scenario).wait},
	"stop":            {1, 1, true, (*scenario).stop},
	"ran":             {2, 2, true, (*scenario).ran},
	"runs":            {1, 1, true, (*scenario).runs},
}
