from __future__ import annotations

from claude_bottle.cli.app import main

if __name__ == "__main__":
    main()
