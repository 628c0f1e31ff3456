"""Suite-wide pytest hooks."""

# The longest file (`--durations`: about 10 minutes of the suite's 65 on a
# loaded 2-core machine, three end-to-end checklists).
LONGEST_FILES = ("tests/task_checklist_test.py",)


def pytest_collection_modifyitems(session, config, items):
    """Runs the longest file first, then the files with end-to-end (`slow`)
    tests, those with more of them earlier, keeping the collection order
    otherwise.

    `pytest -n 2 --dist=loadfile --no-loadscope-reorder` (`make test`)
    hands whole files to the two workers in this order (without the last
    flag xdist sorts the files by their number of tests, and the 3-test
    checklist, collected last, left one worker idle for minutes at the
    end).
    """
    root = config.rootpath
    slow = {}
    for item in items:
        if item.get_closest_marker("slow") is not None:
            slow[item.path] = slow.get(item.path, 0) + 1
    position = {}
    for index, item in enumerate(items):
        position.setdefault(item.path, index)

    def key(item):
        relative = item.path.relative_to(root).as_posix()
        return (
            relative not in LONGEST_FILES,
            -slow.get(item.path, 0),
            position[item.path],
        )

    items.sort(key=key)
