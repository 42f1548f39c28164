"""The controller loop: observe, decide (pure), execute (fenced), record. (Not yet built.)"""
