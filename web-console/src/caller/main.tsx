import { render } from 'preact';
import '../shared/base.css';
import './caller.css';
import { CallerApp } from './CallerApp';

render(<CallerApp />, document.getElementById('app')!);
